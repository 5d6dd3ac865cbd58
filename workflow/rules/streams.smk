# Test-time streams: [OOD set, ID set] shuffled with a seed, in batches; one per
# (benchmark, OOD set, seed). All methods see the same stream.


rule stream:
    input:
        unpack(stream_inputs),
    output:
        "results/streams/{benchmark}/{ood}/seed{seed}.parquet",
    params:
        batch_size=PARAMS["stream"]["batch_size"],
    log:
        "results/logs/stream/{benchmark}/{ood}/seed{seed}.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q stream --id-embeddings {input.id:q} --ood-embeddings {input.ood:q} --seed {wildcards.seed}"
        " --batch-size {params.batch_size} --out {output:q} > {log:q} 2>&1"
