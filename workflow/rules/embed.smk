# Image embeddings: CLIP runs once per image, one job per (backbone, dataset). Every later
# stage is arithmetic on these Parquet tables.
# Runs ants.stages.embed_images (`ants embed-images`).


rule embed_images:
    input:
        template("manifest"),
    output:
        template("embeddings"),
    params:
        backbone=backbone_json,
        encoding=encoding_json("device", "precision", "image_batch_size", "num_workers"),
        on_bad_image=PARAMS["data"]["on_bad_image"],
        max_pixels=PARAMS["data"]["max_pixels"],
    resources:
        gpu=lambda w: encode_gpu(w.backbone),
    log:
        log_path("embed_images", "embeddings"),
    benchmark:
        benchmark_path("embed_images", "embeddings")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants embed-images --manifest {input:q} --backbone-json {params.backbone:q}"
        " --encoding-json {params.encoding:q} --on-bad-image {params.on_bad_image}"
        " --max-pixels {params.max_pixels} --out {output:q} > {log:q} 2>&1"
