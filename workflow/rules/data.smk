# Datasets -> manifests. The demo image set is generated; archives are downloaded (checksum
# checked) and extracted; local datasets are read where params.yaml says.
# Runs ants.stages.make_demo_data (`ants demo-data`), ants.stages.download_dataset
# (`ants download`) and ants.stages.build_dataset_manifest (`ants manifest`).


rule demo_data:
    output:
        lists=expand(template("demo_list"), split=["id", "near", "far"]),
        classnames=template("demo_classnames"),
    params:
        demo=as_param(PARAMS["demo"]),
    log:
        log_path("demo_data"),
    benchmark:
        benchmark_path("demo_data")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants demo-data --demo-json {params.demo:q} --out $(dirname {output.classnames:q}) > {log:q} 2>&1"


rule download:
    output:
        directory(template("download")),
    params:
        dataset=lambda w: dumps(PARAMS["datasets"][w.dataset]),
    log:
        log_path("download", "manifest"),
    benchmark:
        benchmark_path("download", "manifest")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants download --dataset {wildcards.dataset:q} --dataset-json {params.dataset:q}"
        " --out $(dirname {output:q}) > {log:q} 2>&1"


rule manifest:
    input:
        manifest_inputs,
    output:
        template("manifest"),
    params:
        dataset=lambda w: dumps(PARAMS["datasets"][w.dataset]),
        check=lambda w: "" if PARAMS["data"]["check_images"] else "--no-check-images",
        max_pixels=PARAMS["data"]["max_pixels"],
    log:
        log_path("manifest", "manifest"),
    benchmark:
        benchmark_path("manifest", "manifest")
    conda:
        "../envs/ants.yaml"
    shell:
        "ants manifest --dataset {wildcards.dataset:q} --dataset-json {params.dataset:q} {params.check}"
        " --max-pixels {params.max_pixels} --out {output:q} > {log:q} 2>&1"
