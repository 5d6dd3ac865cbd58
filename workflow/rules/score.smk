# Per-sample scores, one job per (benchmark, method, OOD set, seed). Static methods and
# AdaNeg need only features; ANTS replays the negatives log (each answer applied at the batch
# where an online run would have had it), which needs the backbone to encode the negatives.


rule score:
    input:
        unpack(scoring_inputs),
    output:
        "results/scores/{benchmark}/{method}/{ood}/seed{seed}.parquet",
    wildcard_constraints:
        method=_alternatives(STATIC_METHODS),
    params:
        method=method_json,
        stream_id=stream_name,
    log:
        "results/logs/score/{benchmark}/{method}/{ood}/seed{seed}.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q score --stream {input.stream:q} --id-embeddings {input.id:q} --ood-embeddings {input.ood:q}"
        " --text {input.text:q} --negatives {input.negatives:q} --method-json {params.method:q}"
        " --stream-id {params.stream_id:q} --out {output:q} > {log:q} 2>&1"


rule score_ants:
    input:
        unpack(scoring_inputs),
        answers="results/answers/{benchmark}.parquet",
    output:
        "results/scores/{benchmark}/{method}/{ood}/seed{seed}.parquet",
    wildcard_constraints:
        method=_alternatives(ANTS_METHODS),
    params:
        method=method_json,
        stream_id=stream_name,
        backbone=backbone_json,
        encoding=encoding_json("device", "precision", "text_batch_size"),
    log:
        "results/logs/score/{benchmark}/{method}/{ood}/seed{seed}.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q score --stream {input.stream:q} --id-embeddings {input.id:q} --ood-embeddings {input.ood:q}"
        " --text {input.text:q} --negatives {input.negatives:q} --method-json {params.method:q}"
        " --stream-id {params.stream_id:q} --answers {input.answers:q} --backbone-json {params.backbone:q}"
        " --encoding-json {params.encoding:q} --out {output:q} > {log:q} 2>&1"
