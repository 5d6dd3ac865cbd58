"""The ready configs (configs/*.yaml) merged over params.yaml: each validates, leaks nothing of
the demo, fails before any job when its data is missing, and dry-runs its whole DAG.

The data is a tiny fixture laid out like the real datasets, generated in a temporary folder:
ImageNet-style wnid class folders (1,000 of them), OpenOOD image lists under
``images_largescale``, fine-grained class folders and a Stanford Cars list, a custom folder
dataset with its label file (tests/_datasets.py). An extra configfile written by the test points
the roots there (downloads are dry-run only, so no server is needed).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from _datasets import class_folders, images, make_fixture_data

from ants.config import ConfigError, load_config_files, merge_config, read_yaml, validate_params
from ants.snakemake_jobs import job_stats

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def test_every_issue_config_is_shipped():
    assert set(CONFIGS) == {"mos4.yaml", "mos4_qwen2vl.yaml", "openood_v15.yaml", "finegrained.yaml",
                            "custom.yaml"}
    assert not (ROOT / "workflow" / "params").exists() or not list((ROOT / "workflow" / "params").glob("*.yaml"))


@pytest.fixture(scope="module")
def fixture_config(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("data")
    path = base / "fixture_roots.yaml"
    path.write_text(yaml.safe_dump(make_fixture_data(base), sort_keys=False))
    return path


def _only_used(config: dict, params: dict) -> dict:
    """The fixture config restricted to datasets / label sets the merged params define."""
    return {"datasets": {k: v for k, v in config["datasets"].items() if k in params["datasets"]},
            "label_sets": {k: v for k, v in config["label_sets"].items() if k in params["label_sets"]}}


# ------------------------------------------------------------------------------------------
# merged configs: valid with their data, failing by key without it, nothing leaking


@pytest.mark.parametrize("name", CONFIGS)
def test_config_merged_over_params_is_valid_with_its_data(name, fixture_config, tmp_path):
    merged = read_yaml(ROOT / "params.yaml")
    merged = merge_config(merged, read_yaml(ROOT / "configs" / name))
    extra = tmp_path / "roots.yaml"
    extra.write_text(yaml.safe_dump(_only_used(read_yaml(fixture_config), merged)))
    p = load_config_files([ROOT / "params.yaml", ROOT / "configs" / name, extra])
    assert p["mllm"]["backend"] == "transformers" and p["mllm"]["gpu"] is True
    for b in p["run"]["benchmarks"]:
        assert p["benchmarks"][b]["backbone"] == "vit_b16"


@pytest.mark.parametrize("name", CONFIGS)
def test_config_without_its_data_fails_naming_the_key_and_the_file(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the configs' relative data/ paths do not exist here
    with pytest.raises(ConfigError) as info:
        load_config_files([ROOT / "params.yaml", ROOT / "configs" / name], check_files=True)
    problems = info.value.problems
    assert problems and all(re.match(r"^(datasets|label_sets)\.[a-z0-9_]+\.(root|list|file): ", p) for p in problems)
    assert all(f"(set in {ROOT / 'configs' / name})" in p for p in problems), problems
    assert str(ROOT / "configs" / name) in str(info.value).splitlines()[0]
    # without the file checks the merged whole is valid: only the data is missing
    load_config_files([ROOT / "params.yaml", ROOT / "configs" / name], check_files=False)


def test_imagenet_missing_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config_files([ROOT / "params.yaml", ROOT / "configs" / "mos4.yaml"])
    (line,) = info.value.problems
    assert line.startswith("datasets.imagenet_val.root: 'data/imagenet/val' does not exist, but run.benchmarks "
                           "includes 'mos4', which uses dataset 'imagenet_val' (ID); ImageNet-1k val is "
                           "registration-gated: sign in at https://image-net.org/download-images")
    assert "one folder per wnid" in line and line.endswith(f"(set in {ROOT / 'configs' / 'mos4.yaml'})")


PAPER_ANTS = {"near_delta": 0.08, "near_top_k": 40, "ens_max_updates": 10, "ens_trigger_size": 200,
              "vsnl_start": 10, "vsnl_interval": 40, "group_size": 100}
#: where a config differs from the code's defaults, and why: Oxford-IIIT Pets has 37 classes, so
#: the near subset of the authors' code (40 classes) cannot be taken there
CONFIG_ANTS = {"finegrained.yaml": {"near_top_k": 37}}


@pytest.mark.parametrize("name", CONFIGS)
def test_nothing_of_the_demo_leaks_into_a_paper_scale_config(name):
    """Every demo-scale value of params.yaml is overridden: the ANTS switches are the presets'
    own (AntsConfig's defaults), the MLLM settings are the selected backend's alone."""
    from ants.methods.ants_tta import AntsConfig

    demo = read_yaml(ROOT / "params.yaml")
    p = load_config_files([ROOT / "params.yaml", ROOT / "configs" / name], check_files=False)
    defaults = AntsConfig()
    for key, value in PAPER_ANTS.items():
        assert getattr(defaults, key) == value  # the table above is the code's default
    expected = {**PAPER_ANTS, **CONFIG_ANTS.get(name, {})}
    for m in ("ants_paper", "ants_code"):
        cfg = p["methods"][m]["config"]
        for key, value in cfg.items():
            if key in expected:
                assert value == expected[key], (name, m, key)
        assert set(demo["methods"][m]["config"]) - {"preset"} <= set(cfg) - {"preset"}
    assert p["mining"]["n_negatives"] == 10000 and p["stream"]["batch_size"] == 256
    if "eoe" in p["run"]["methods"]:  # EOE's ImageNet setting: 500 names, their parser
        assert p["methods"]["eoe"]["n_envisioned"] == 500 and p["methods"]["eoe"]["parser"] == "authors"
    from ants.config import paper_sweeps

    for sweep in paper_sweeps(p):  # the paper's panels and ablation run on the config's benchmarks
        assert set(p["sweeps"][sweep]["benchmarks"]) <= set(p["run"]["benchmarks"]), (name, sweep)
    assert p["methods"]["neglabel"]["n_groups"] == 100
    from ants.views import backend_config

    flat = backend_config(p)
    if "backends" not in flat:  # views.backend_config already reads mllm.backends
        assert set(flat) == {"backend", "family", "prompts", "generation", "batch_size",
                             *p["mllm"]["backends"]["transformers"]}
        assert "seed" not in flat and "model_dir" not in flat  # the demo backend's keys


@pytest.mark.parametrize("name", CONFIGS)
def test_adaneg_compared_with_the_published_numbers_is_the_authors_code(name):
    """The published AdaNeg numbers come from the authors' code (docs/METHOD.md section 5), and the
    tables set every AdaNeg row beside them: each AdaNeg method of a shipped config is the
    ``authors_code`` preset exactly (9 image slots, beta 5, task proxy), with nothing of the
    demo's ``paper`` settings (params.yaml's ``proxy: sample``) merged in."""
    from ants.methods.adaneg import AdaNegConfig, adaneg_config
    from ants.views import tables_view

    p = load_config_files([ROOT / "params.yaml", ROOT / "configs" / name], check_files=False)
    view = tables_view(p)
    adaneg = [m for m in p["run"]["methods"] if p["methods"][m]["method"] == "adaneg"]
    assert adaneg, name
    for m in adaneg:
        cfg = adaneg_config(p["methods"][m]["config"])
        assert cfg == AdaNegConfig.preset("authors_code"), (name, m)
        assert (cfg.image_slots, cfg.effective_beta, cfg.proxy) == (9, 5.0, "task")
        assert view["methods"][m]["preset"] == "authors_code"


def test_the_qwen2vl_config_is_the_authors_released_setting():
    p = load_config_files([ROOT / "params.yaml", ROOT / "configs" / "mos4_qwen2vl.yaml"], check_files=False)
    assert p["mllm"]["family"] == "qwen2vl"
    assert p["mllm"]["backends"]["transformers"]["model"] == "Qwen/Qwen2-VL-2B-Instruct"
    code = p["methods"]["ants_code"]
    assert code["config"]["preset"] == "authors_code" and code["in_score"]["far"] == "far_only"
    assert "ants_code" in p["run"]["methods"] and "ants_paper" not in p["run"]["methods"]
    from ants.mllm.prompts import PROMPTS

    ens = p["sweeps"]["ens_words"]
    assert ens["default"] == PROMPTS["qwen2vl"]["ens"] and ens["default"] in ens["values"]


def test_finegrained_config_uses_the_builtin_label_sets_and_the_mos_far_sets():
    from ants.labels import load_label_set

    p = load_config_files([ROOT / "params.yaml", ROOT / "configs" / "finegrained.yaml"], check_files=False)
    sizes = {"cub200": 200, "stanford_cars": 196, "food101": 101, "oxford_pets": 37}
    assert sorted(p["run"]["benchmarks"]) == sorted(sizes)
    for b, k in sizes.items():
        bench = p["benchmarks"][b]
        assert p["label_sets"][bench["label_set"]] == {"builtin": b}
        assert len(load_label_set(b)) == k
        assert bench["ood"] == {"far": ["inaturalist", "sun", "places", "textures"]}


def test_class_folders_must_match_the_label_set(fixture_config, tmp_path):
    base = tmp_path / "few"
    class_folders(base, ["a", "b"])
    extra = tmp_path / "x.yaml"
    extra.write_text(yaml.safe_dump({"datasets": {"imagenet_val": {"root": str(base)}}}))
    with pytest.raises(ConfigError) as info:
        load_config_files([ROOT / "params.yaml", ROOT / "configs" / "mos4.yaml", extra])
    (line,) = info.value.problems
    assert line.startswith(f"datasets.imagenet_val.root: '{base}' has 2 class sub-folders, but its label set "
                           f"'imagenet1k' has 1000 classes (class index = sorted folder order); ")
    assert line.endswith(f"(set in {extra})")


def test_an_invalid_merged_result_names_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("mllm:\n  backend: openai\n  backends:\n    openai:\n      base_url: ftp://x\n"
                   "stream:\n  order: random\n")
    with pytest.raises(ConfigError) as info:
        load_config_files([ROOT / "params.yaml", bad])
    assert info.value.problems == [
        "mllm.backends.openai.base_url: 'ftp://x' does not match the pattern '^https?://' "
        f"(set in {bad})",
        "stream.order: 'random' is not allowed; allowed values: 'shuffled', 'id_first', 'ood_first' "
        f"(set in {bad})",
    ]
    assert str(info.value).startswith(f"{ROOT / 'params.yaml'} + {bad} is not valid (2 problems):")


# ------------------------------------------------------------------------------------------
# the whole DAG of every config, dry-run through Snakemake


def _env() -> dict:
    e = dict(os.environ)
    e.update(PATH=f"{SNAKEMAKE.parent}{os.pathsep}{e.get('PATH', '')}", HF_HUB_OFFLINE="1",
             TRANSFORMERS_OFFLINE="1", DVC_NO_ANALYTICS="1")
    return e


def _dry_run(workdir: Path, *configfiles: Path, target: str = "all") -> subprocess.CompletedProcess:
    (workdir / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    args = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "-n", "--cores", "8", target]
    if configfiles:
        args += ["--configfile", *map(str, configfiles)]
    return subprocess.run(args, cwd=workdir, env=_env(), capture_output=True, text=True, timeout=300)


def _has_rule(name: str) -> bool:
    text = (ROOT / "Snakefile").read_text() + "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    return re.search(rf"^rule {name}:", text, re.M) is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_config_dry_runs_its_whole_dag(name, fixture_config, tmp_path, record_figure):
    merged = merge_config(read_yaml(ROOT / "params.yaml"), read_yaml(ROOT / "configs" / name))
    extra = tmp_path / "roots.yaml"
    extra.write_text(yaml.safe_dump(_only_used(read_yaml(fixture_config), merged)))
    work = tmp_path / "work"
    work.mkdir()
    targets = ["all"] + (["sweeps"] if _has_rule("sweeps") and merged["run"].get("sweeps") else [])
    targets += ["paper"] if _has_rule("paper") else []
    for target in targets:
        proc = _dry_run(work, ROOT / "configs" / name, extra, target=target)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        counts = job_stats(proc.stdout + proc.stderr)
        record_figure(f"dry run {name} ({target}): {sum(counts.values())} jobs: "
                      + ", ".join(f"{k}={v}" for k, v in counts.items()))
        if target == "all":
            for rule in ("manifest", "embed_images", "embed_labels", "metrics", "report"):
                assert counts.get(rule, 0) > 0, (rule, counts)
            assert counts.get("score", 0) > 0, counts
            downloads = {ds for b in merged["run"]["benchmarks"] for ds in merged["benchmarks"][b]["ood"].get("far", [])
                         if merged["datasets"][ds]["source"] == "download"}
            assert counts.get("download", 0) == len(downloads)
        if target == "paper":  # the tables and Figure 7 panels the config declares, and the report
            paper = load_config_files([ROOT / "params.yaml", ROOT / "configs" / name], check_files=False)["paper"]
            assert counts.get("report", 0) == 1 and counts.get("tables", 0) == 1, counts
            assert counts.get("ablation_table", 0) == ("ablation" in paper["tables"]), counts
            assert counts.get("cost_table", 0) == ("cost" in paper["tables"]), counts
            assert counts.get("sweep_metrics", 0) == len(paper["panels"]) + ("ablation" in paper["tables"])


@pytest.mark.slow
def test_dry_run_with_a_missing_root_fails_before_any_job_naming_the_key(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    extra = tmp_path / "roots.yaml"
    extra.write_text(yaml.safe_dump({"datasets": {"imagenet_val": {"root": str(tmp_path / "nowhere")}}}))
    proc = _dry_run(work, ROOT / "configs" / "mos4.yaml", extra)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"datasets.imagenet_val.root: '{tmp_path / 'nowhere'}' does not exist, but run.benchmarks includes 'mos4'" in out
    assert "registration-gated" in out and "Job stats" not in out


@pytest.mark.slow
def test_dry_run_rejects_duplicate_keys(tmp_path):
    if "load_config_files" not in (ROOT / "workflow" / "rules" / "common.smk").read_text():
        pytest.skip("workflow/rules/common.smk does not re-load the config files with ants.config yet")
    work = tmp_path / "work"
    work.mkdir()
    dup = tmp_path / "dup.yaml"
    dup.write_text("stream:\n  batch_size: 8\n  batch_size: 16\n")
    proc = _dry_run(work, dup)
    assert proc.returncode != 0
    assert f"stream.batch_size: duplicate key in {dup} (line 2 and line 3)" in proc.stdout + proc.stderr


def test_validate_params_of_a_config_copy_is_independent():
    p = load_config_files([ROOT / "params.yaml", ROOT / "configs" / "mos4.yaml"], check_files=False)
    q = validate_params(p, check_files=False)
    q["methods"]["mcm"]["temperature"] = 2.0
    assert p["methods"]["mcm"]["temperature"] == 1.0
    assert copy.deepcopy(p) == p


def test_configs_lay_datasets_out_as_the_registry_says():
    """A shipped config and ants.datasets.registry.KNOWN_DATASETS agree on each benchmark set's layout
    and image count (the registry's instructions are what a missing path prints)."""
    from ants.datasets.registry import KNOWN_DATASETS

    checked = 0
    for name in CONFIGS:
        for ds, cfg in (yaml.safe_load((ROOT / "configs" / name).read_text()).get("datasets") or {}).items():
            known = KNOWN_DATASETS.get(ds)
            if known is None:
                continue
            for key in ("layout", "expected_images"):
                if key in cfg:
                    assert cfg[key] == known[key], (name, ds, key)
                    checked += 1
            if ds == "openood_textures":
                assert cfg["root"].endswith("images_classic"), (name, cfg["root"])  # where OpenOOD keeps it
    assert checked >= 8


def test_config_merge_writes_one_valid_params_file_for_dvc(fixture_config, tmp_path, capsys):
    """`ants config merge params.yaml configs/X.yaml ... --out F` (the DVC route) writes what
    `snakemake --configfile` would use, and `ants config check F` agrees."""
    from ants.cli import main

    merged = merge_config(read_yaml(ROOT / "params.yaml"), read_yaml(ROOT / "configs" / "mos4.yaml"))
    extra = tmp_path / "roots.yaml"
    extra.write_text(yaml.safe_dump(_only_used(read_yaml(fixture_config), merged)))
    files = [str(ROOT / "params.yaml"), str(ROOT / "configs" / "mos4.yaml"), str(extra)]
    out = tmp_path / "params.yaml"
    assert main(["config", "merge", *files, "--out", str(out)]) == 0
    assert f"-> {out} (valid)" in capsys.readouterr().out
    assert load_config_files([out]) == load_config_files(files)
    assert main(["config", "check", str(out)]) == 0
    assert "benchmarks: mos4" in capsys.readouterr().out
    # a merge that is not valid writes nothing and names the key
    bad = tmp_path / "bad.yaml"
    bad.write_text("stream: {batch_size: 0}\n")
    assert main(["config", "merge", *files, str(bad), "--out", str(tmp_path / "never.yaml")]) == 2
    assert "stream.batch_size" in capsys.readouterr().err and not (tmp_path / "never.yaml").exists()


@pytest.mark.slow
def test_data_that_does_not_fit_the_settings_fails_config_check_and_dry_run(tmp_path):
    """configs/custom.yaml on data that cannot give right results: `ants config check` and
    `snakemake -n` both refuse it before any job, one line per problem naming the key (issue 21
    items 5 and 8: each of these surfaced only as a traceback in a job, or never)."""
    from ants.wordnet import LEXNAMES

    work = tmp_path / "work"
    class_folders(work / "data/custom/id", ["cat", "dog", "日本"], ext=".jpg")
    (work / "data/custom/id/mouse").mkdir()  # a class folder without images
    images(work / "data/custom/ood", 2, ext=".jpg")
    names = work / "data/custom/classnames.txt"
    names.write_text("日本\ncat\ndog\nmouse\n")  # not the sorted folder order
    (work / "afile").write_text("x")
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml.safe_dump({
        "mining": {"exclude_lexnames": sorted(set(LEXNAMES) - {"noun.shape"}), "n_negatives": 5000},
        "mllm": {"cache": "afile/cache.sqlite"}, "methods": {"neglabel": {"n_groups": 5}}}))
    expected = [
        "datasets.custom_id.root: class folder 'mouse' of 'data/custom/id' holds no image file",
        "datasets.custom_id.root: class folder 'cat' is class 0 (the 1st folder in sorted order), whose name in "
        "label set 'custom' (label_sets.custom.file) is '日本', but 'cat' is class 1 there",
        "methods.ants_code.config.near_top_k: 40 is more than the 4 classes of label set 'custom' of benchmark "
        "'custom'",
        "mining.n_negatives: 5000 is more than the ",
        "mllm.cache: 'afile/cache.sqlite' cannot be created: 'afile' is a file, not a folder",
    ]
    config = ROOT / "configs" / "custom.yaml"
    check = subprocess.run([str(SNAKEMAKE.parent / "ants"), "config", "check", str(ROOT / "params.yaml"), str(config),
                            str(extra)], cwd=work, env=_env(), capture_output=True, text=True, timeout=300)
    dry = _dry_run(work, config, extra)
    for proc in (check, dry):
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "5 problems" in text, text[-3000:]
        assert [line for line in expected if line not in text] == []
    assert "Job stats" not in dry.stdout + dry.stderr and not (work / "results").exists()

    # duplicate class names (planning used to swallow the error)
    names.write_text("cat\ndog\n日本\nCat\n")
    extra.write_text("{}\n")
    for proc in (subprocess.run([str(SNAKEMAKE.parent / "ants"), "config", "check", str(ROOT / "params.yaml"),
                                 str(config), str(extra)], cwd=work, env=_env(), capture_output=True, text=True,
                                timeout=300), _dry_run(work, config, extra)):
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert ("label_sets.custom.file: data/custom/classnames.txt: duplicate class name 'Cat' on lines 1 and 4 "
                "(names are compared case-insensitively); give every class one line") in text
