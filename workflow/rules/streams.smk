# Test-time streams: [OOD set, ID set] in a seeded order (shuffled, or one set first), in
# batches; one per (benchmark, OOD set, order and batch size, seed). All methods that share
# those settings see the same stream.
# Runs ants.stages.stream (`ants stream`).


rule stream:
    input:
        unpack(stream_inputs),
    output:
        template("stream"),
    params:
        stream=stream_json,
    log:
        log_path("stream", "stream"),
    benchmark:
        benchmark_path("stream", "stream")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants stream --id-embeddings {input.id:q} --ood-embeddings {input.ood:q} --seed {wildcards.seed}"
        " --stream-json {params.stream:q} --out {output:q} > {log:q} 2>&1"
