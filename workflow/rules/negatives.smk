# ID label set -> ID text features (two prompts) and NegMining's negative labels from the
# WordNet corpus (or the list of mining.file); one job per (backbone, label set). The CSP-mined
# bank (ANTS's initial_detector: csp) is another job, only when a method asks for it.
# The MLLM's negatives -> their CLIP text features, once per (backbone, template, text): a
# content-addressed store (results/text-features/{backbone}.sqlite) shared by every stream;
# each stream's job encodes only the texts not yet stored, and the ANTS score jobs then load
# no CLIP at all.
# Runs ants.stages.embed_label_set (`ants embed-labels`), ants.stages.mine_negatives
# (`ants mine-negatives`) and ants.stages.encode_negatives (`ants encode-negatives`).


rule embed_labels:
    input:
        label_set_inputs,
    output:
        text=template("id_text"),
        negatives=template("negatives"),
    params:
        label_set=lambda w: dumps(PARAMS["label_sets"][w.label_set]),
        backbone=backbone_json,
        encoding=encoding_json("device", "precision", "text_batch_size"),
        mining=as_param(PARAMS["mining"]),
    log:
        log_path("embed_labels", "id_text"),
    benchmark:
        benchmark_path("embed_labels", "id_text")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants embed-labels --label-set {wildcards.label_set:q} --backbone {wildcards.backbone:q}"
        " --label-set-json {params.label_set:q} --backbone-json {params.backbone:q}"
        " --encoding-json {params.encoding:q} --mining-json {params.mining:q}"
        " --out-text {output.text:q} --out-negatives {output.negatives:q} > {log:q} 2>&1"


rule mine_csp:
    input:
        label_set_inputs,
    output:
        template("negatives_csp"),
    params:
        label_set=lambda w: dumps(PARAMS["label_sets"][w.label_set]),
        backbone=backbone_json,
        encoding=encoding_json("device", "precision", "text_batch_size"),
        mining=as_param({**PARAMS["mining"], "source": "wordnet", "file": None, "selection": "csp"}),
    log:
        log_path("mine_csp", "negatives_csp"),
    benchmark:
        benchmark_path("mine_csp", "negatives_csp")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants mine-negatives --label-set {wildcards.label_set:q} --backbone {wildcards.backbone:q}"
        " --label-set-json {params.label_set:q} --backbone-json {params.backbone:q}"
        " --encoding-json {params.encoding:q} --mining-json {params.mining:q}"
        " --out {output:q} > {log:q} 2>&1"


rule encode_negatives:
    input:
        template("answers"),
    output:
        template("negative_text"),
    params:
        method=text_json,
        backbone=backbone_json,
        encoding=encoding_json("device", "precision", "text_batch_size"),
        store=text_store,
    log:
        log_path("encode_negatives", "negative_text"),
    benchmark:
        benchmark_path("encode_negatives", "negative_text")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants encode-negatives --answers {input:q} --method-json {params.method:q}"
        " --backbone-json {params.backbone:q} --encoding-json {params.encoding:q}"
        " --store {params.store:q} --out {output:q} > {log:q} 2>&1"
