# ID label set -> ID text features (two prompts) and NegMining's negative labels from the
# WordNet corpus; one job per (backbone, label set).


rule embed_labels:
    input:
        label_set_inputs,
    output:
        text="results/text/{backbone}/{label_set}.parquet",
        negatives="results/negatives/{backbone}/{label_set}.parquet",
    params:
        label_set=lambda w: dumps(PARAMS["label_sets"][w.label_set]),
        backbone=backbone_json,
        encoding=encoding_json("device", "precision", "text_batch_size"),
        mining=as_param(PARAMS["mining"]),
    log:
        "results/logs/embed_labels/{backbone}/{label_set}.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q embed-labels --label-set {wildcards.label_set:q} --backbone {wildcards.backbone:q}"
        " --label-set-json {params.label_set:q} --backbone-json {params.backbone:q}"
        " --encoding-json {params.encoding:q} --mining-json {params.mining:q}"
        " --out-text {output.text:q} --out-negatives {output.negatives:q} > {log:q} 2>&1"
