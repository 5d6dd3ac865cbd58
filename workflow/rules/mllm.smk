# Plan -> answer. ANTS's MLLM queries depend only on static scores and stream order, so a
# cheap pass lists them (one job per ANTS stream) and ONE job per benchmark answers them all in
# batches through the SQLite answer cache shared by every job (a re-run asks only what is not
# cached; a changed prompt or model changes the cache key). Output: the negatives log.


rule plan:
    input:
        unpack(scoring_inputs),
    output:
        "results/plans/{benchmark}/{method}/{ood}/seed{seed}.parquet",
    wildcard_constraints:
        method=_alternatives(ANTS_METHODS),
    params:
        plan=plan_json,
        stream_id=stream_name,
    log:
        "results/logs/plan/{benchmark}/{method}/{ood}/seed{seed}.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q plan --stream {input.stream:q} --id-embeddings {input.id:q} --ood-embeddings {input.ood:q}"
        " --text {input.text:q} --negatives {input.negatives:q} --plan-json {params.plan:q}"
        " --stream-id {params.stream_id:q} --out {output:q} > {log:q} 2>&1"


rule answer:
    input:
        plans=plan_files,
    output:
        "results/answers/{benchmark}.parquet",
    params:
        mllm=as_param(backend_config(PARAMS)),
        cache=PARAMS["mllm"]["cache"],
    resources:
        gpu=MLLM_GPU,
    log:
        "results/logs/answer/{benchmark}.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q answer --plans {input.plans:q} --mllm-json {params.mllm:q} --cache {params.cache:q}"
        " --out {output:q} > {log:q} 2>&1"
