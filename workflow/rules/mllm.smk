# Plan -> answer. ANTS's MLLM queries depend only on the static scores and the stream order,
# so a cheap pass lists them (one job per ANTS stream) and one job per stream answers them in
# batches through the SQLite answer cache shared by every job (a re-run asks only what is not
# cached; a changed prompt or model changes the cache key; a query shared by several streams
# is answered once). Adding a seed or an OOD set adds its own jobs and touches no other.
# Runs ants.stages.plan (`ants plan`) and ants.stages.answer (`ants answer`).


rule plan:
    input:
        unpack(scoring_inputs),
    output:
        template("plan"),
    params:
        plan=plan_json,
        stream_id=stream_name,
    log:
        log_path("plan", "plan"),
    benchmark:
        benchmark_path("plan", "plan")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants plan --stream {input.stream:q} --id-embeddings {input.id:q} --ood-embeddings {input.ood:q}"
        " --text {input.text:q} --static-id {input.static_id:q} --static-ood {input.static_ood:q}"
        " --plan-json {params.plan:q} --stream-id {params.stream_id:q} --out {output:q} > {log:q} 2>&1"


rule answer:
    input:
        template("plan"),
    output:
        template("answers"),
    params:
        answer=answer_json,
        cache=PARAMS["mllm"]["cache"],
        timings=template("timings"),
    resources:
        gpu=MLLM_GPU,
        # one answer job at a time (the profiles and dvc.yaml give mllm_jobs=1): each sees the
        # answers the previous ones committed to the shared cache, so a question shared by
        # several streams (an ID image, a VSNL class) is bought once
        mllm_jobs=1,
    log:
        log_path("answer", "answers"),
    benchmark:
        benchmark_path("answer", "answers")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants answer --plan {input:q} --answer-json {params.answer:q} --cache {params.cache:q}"
        " --timings {params.timings:q} --out {output:q} > {log:q} 2>&1"
