# Datasets -> manifests. The demo image set is generated; archives are downloaded (checksum
# checked) and extracted; local datasets are read where params.yaml says.


rule demo_data:
    output:
        lists=expand("results/data/demo/{split}.txt", split=["id", "near", "far"]),
        classnames="results/data/demo/classnames.txt",
    params:
        demo=as_param(PARAMS["demo"]),
    log:
        "results/logs/demo_data.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q demo-data --demo-json {params.demo:q} --out $(dirname {output.classnames:q}) > {log:q} 2>&1"


rule download:
    output:
        directory("results/data/downloads/{dataset}/extracted"),
    params:
        dataset=lambda w: dumps(PARAMS["datasets"][w.dataset]),
    log:
        "results/logs/download/{dataset}.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants download --dataset {wildcards.dataset:q} --dataset-json {params.dataset:q}"
        " --out $(dirname {output:q}) > {log:q} 2>&1"


rule manifest:
    input:
        manifest_inputs,
    output:
        "results/manifests/{dataset}.parquet",
    params:
        dataset=lambda w: dumps(PARAMS["datasets"][w.dataset]),
        check=lambda w: "" if PARAMS["data"]["check_images"] else "--no-check-images",
    log:
        "results/logs/manifest/{dataset}.log",
    conda:
        "../envs/ants.yaml"
    shell:
        "ants -q manifest --dataset {wildcards.dataset:q} --dataset-json {params.dataset:q} {params.check}"
        " --out {output:q} > {log:q} 2>&1"
