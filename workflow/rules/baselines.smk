# The other training-free baselines of the paper's Table 1 that run on the same frozen features.
# GL-MCM's local term: a second CLIP pass over a dataset's images, reduced at once to one number
# per (image, ID label set, temperature) -> results/local/... (the global term is the image
# embeddings). EOE's envisioned labels: one job per (label set, EOE method: prompt kind, number,
# backend/model) asks the LLM (text only, through the MLLM backends and the shared answer cache)
# and writes an answers log -> results/envisioned/{label_set}/{method}.parquet (`ants answers
# list --log results/envisioned`); their CLIP text features -> results/envisioned-text/...
# Runs ants.stages.local_features (`ants local-features`), ants.stages.envision (`ants envision`)
# and ants.stages.encode_envisioned (`ants encode-envisioned`).


def label_file(wildcards):
    cfg = PARAMS["label_sets"][wildcards.label_set]
    return [cfg["file"]] if "file" in cfg else []


def eoe_section(wildcards):
    params, base = point_params(PARAMS, wildcards.method)
    return dumps(params["methods"][base])


rule local_features:
    input:
        embeddings=template("embeddings"),
        text=template("id_text"),
    output:
        template("local"),
    params:
        backbone=backbone_json,
        encoding=encoding_json("device", "precision", "image_batch_size", "num_workers"),
        max_pixels=PARAMS["data"]["max_pixels"],
    resources:
        gpu=lambda w: encode_gpu(w.backbone),
    log:
        log_path("local_features", "local"),
    benchmark:
        benchmark_path("local_features", "local")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants local-features --embeddings {input.embeddings:q} --text {input.text:q}"
        " --backbone-json {params.backbone:q} --encoding-json {params.encoding:q}"
        " --temperature {wildcards.temperature} --max-pixels {params.max_pixels} --out {output:q} > {log:q} 2>&1"


rule envision:
    input:
        label_file,
    output:
        template("envisioned"),
    params:
        label_set=lambda w: dumps(PARAMS["label_sets"][w.label_set]),
        method=eoe_section,
        answer=lambda w: dumps(eoe_answer_config(PARAMS, w.method)),
        cache=PARAMS["mllm"]["cache"],
        stream_id=lambda w: f"eoe/{w.label_set}/{w.method}",
        timings=template("envision_timings"),
    resources:
        gpu=MLLM_GPU,
        mllm_jobs=1,
    log:
        log_path("envision", "envisioned"),
    benchmark:
        benchmark_path("envision", "envisioned")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants envision --label-set-json {params.label_set:q} --method-json {params.method:q}"
        " --answer-json {params.answer:q} --cache {params.cache:q} --stream-id {params.stream_id:q}"
        " --timings {params.timings:q} --out {output:q} > {log:q} 2>&1"


rule encode_envisioned:
    input:
        template("envisioned"),
    output:
        template("envisioned_text"),
    params:
        label_set=lambda w: dumps(PARAMS["label_sets"][w.label_set]),
        method=eoe_section,
        backbone=backbone_json,
        encoding=encoding_json("device", "precision", "text_batch_size"),
        store=template("text_store"),
    log:
        log_path("encode_envisioned", "envisioned_text"),
    benchmark:
        benchmark_path("encode_envisioned", "envisioned_text")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants encode-envisioned --answers {input:q} --label-set-json {params.label_set:q}"
        " --method-json {params.method:q} --backbone-json {params.backbone:q}"
        " --encoding-json {params.encoding:q} --store {params.store:q} --out {output:q} > {log:q} 2>&1"
