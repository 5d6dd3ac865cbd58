# Test-time streams: [OOD set, ID set] in a seeded order (shuffled, or one set first), in
# batches; one per (benchmark, OOD set, order and batch size, seed). All methods that share
# those settings see the same stream.
# Runs ants.stages.stream (`ants stream`).


rule stream:
    input:
        unpack(stream_inputs),
    output:
        "results/streams/{benchmark}/{ood}/{stream_key}/seed{seed}.parquet",
    params:
        stream=stream_json,
    log:
        "results/logs/stream/{benchmark}/{ood}/{stream_key}/seed{seed}.log",
    benchmark:
        "results/benchmarks/stream/{benchmark}/{ood}/{stream_key}/seed{seed}.tsv"
    conda:
        "../envs/ants.yaml"
    shell:
        "ants stream --id-embeddings {input.id:q} --ood-embeddings {input.ood:q} --seed {wildcards.seed}"
        " --stream-json {params.stream:q} --out {output:q} > {log:q} 2>&1"
