# The static pass: per image, the grouped negative-label score S_nl, the ID prediction and the
# log-sum-exp of its ID logits depend on that image alone, so they are computed once per
# (backbone, label set, dataset, grouping) and shared by NegLabel, every ANTS plan and score
# job, every seed and every stream (which index into them). ANTS's initial_detector switch
# names other passes: MCM at tau (mcm-tau0.01, no negatives) or the grouped score over the
# CSP-mined negatives (csp-size100-...).
# Runs ants.stages.static (`ants static`).


rule static:
    input:
        unpack(static_inputs),
    output:
        template("static"),
    params:
        scoring=static_json,
        negatives=lambda w, input: f"--negatives '{input.negatives}'" if "negatives" in input.keys() else "",
    log:
        log_path("static", "static"),
    benchmark:
        benchmark_path("static", "static")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants static --embeddings {input.embeddings:q} --text {input.text:q} {params.negatives}"
        " --scoring-json {params.scoring:q} --out {output:q} > {log:q} 2>&1"
