# The static pass: per image, the grouped negative-label score S_nl, the ID prediction and the
# log-sum-exp of its ID logits depend on that image alone, so they are computed once per
# (backbone, label set, dataset, grouping) and shared by NegLabel, every ANTS plan and score
# job, every seed and every stream (which index into them).
# Runs ants.stages.static (`ants static`).


rule static:
    input:
        embeddings=template("embeddings"),
        text=template("id_text"),
        negatives=template("negatives"),
    output:
        template("static"),
    params:
        scoring=static_json,
    log:
        log_path("static", "static"),
    benchmark:
        benchmark_path("static", "static")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants static --embeddings {input.embeddings:q} --text {input.text:q} --negatives {input.negatives:q}"
        " --scoring-json {params.scoring:q} --out {output:q} > {log:q} 2>&1"
