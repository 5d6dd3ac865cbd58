"""params.yaml validation (ants.config + workflow/schemas/params.schema.yaml) and the config views."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from pathlib import Path

import pytest

from ants import config as cfgmod
from ants import views
from ants.config import (
    ConfigError,
    load_config_files,
    load_params,
    load_schema,
    validate_params,
)
from ants.views import (
    ANTS_PLAN_KEYS,
    backend_config,
    method_config,
    metrics_view,
    plan_config,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def params():
    return load_params(ROOT / "params.yaml")


def problems(params, mutate):
    """The problem lines validation reports after ``mutate(copy of params)``."""
    p = copy.deepcopy(params)
    mutate(p)
    with pytest.raises(ConfigError) as info:
        validate_params(p)
    return info.value.problems


def only_problem(params, mutate):
    found = problems(params, mutate)
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------------------------------
# the shipped files


def test_default_params_is_valid_and_is_the_demo(params):
    assert params["run"]["benchmarks"] == ["demo"]
    assert params["mllm"]["backend"] == "demo"
    assert params["backbones"][params["benchmarks"]["demo"]["backbone"]]["model"] == "tiny"
    assert set(params["run"]["methods"]) == {"mcm", "neglabel", "adaneg", "ants_paper", "ants_code"}
    presets = {params["methods"][m]["config"]["preset"] for m in ("ants_paper", "ants_code")}
    assert presets == {"paper", "authors_code"}
    assert len(params["run"]["seeds"]) >= 2


def test_paper_scale_config_is_valid_once_the_imagenet_folder_is_there(tmp_path):
    extra = tmp_path / "roots.yaml"
    extra.write_text(f"datasets:\n  imagenet_val:\n    root: {tmp_path / 'val'}\n")
    files = [ROOT / "params.yaml", ROOT / "configs" / "mos4.yaml", extra]
    with pytest.raises(ConfigError, match=r"datasets\.imagenet_val\.root: '.*val' does not exist, but "
                                          r"run\.benchmarks includes 'mos4'"):
        load_config_files(files)
    for i in range(1000):
        (tmp_path / "val" / f"n{i:08d}").mkdir(parents=True)
    p = load_config_files(files)
    assert p["mining"]["n_negatives"] == 10000 and p["stream"]["batch_size"] == 256
    assert p["methods"]["neglabel"]["n_groups"] == 100


def test_load_params_reports_yaml_syntax_and_missing_file(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("run: [unclosed\n")
    with pytest.raises(ConfigError, match=r"p\.yaml is not valid \(1 problem\):\n  - \(file\): not valid YAML"):
        load_params(bad)
    with pytest.raises(FileNotFoundError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"\(top level\): expected a mapping of sections"):
        load_params(bad)


# ------------------------------------------------------------------------------------------
# schema errors: each names the key path, the bad value and what is allowed


def test_unknown_top_level_key(params):
    line = only_problem(params, lambda p: p.update(strem={}))
    assert line.startswith("strem: unknown key (did you mean 'stream'?); allowed keys here: backbones, benchmarks,")


def test_unknown_nested_key_suggests_the_close_one(params):
    line = only_problem(params, lambda p: p["methods"]["adaneg"]["config"].update(lamda=0.2))
    assert line == ("methods.adaneg.config.lamda: unknown key (did you mean 'lam'?); allowed keys here: authors_slots, "
                    "beta, gap, grouping_seed, lam, memory_length, n_groups, preset, proxy, tau, threshold, "
                    "truncate_beta")


def test_key_of_another_method_kind_is_unknown(params):
    line = only_problem(params, lambda p: p["methods"]["mcm"].update(n_groups=3))
    assert line == "methods.mcm.n_groups: unknown key; allowed keys here: label, method, temperature"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("stream", "batch_size"), "16", "stream.batch_size: '16' has the wrong type; expected an integer"),
        (("stream", "batch_size"), 2.5, "stream.batch_size: 2.5 has the wrong type; expected an integer"),
        (("data", "check_images"), "yes", "data.check_images: 'yes' has the wrong type; expected true or false"),
        (("run", "seeds"), 3, "run.seeds: 3 has the wrong type; expected a list"),
        (("methods", "mcm", "temperature"), True, "methods.mcm.temperature: true has the wrong type; expected a number"),
    ],
)
def test_wrong_type(params, path, value, expected):
    def mutate(p):
        node = p
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    assert only_problem(params, mutate) == expected


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("stream", "batch_size"), 0, "stream.batch_size: 0 is out of range; expected a value >= 1"),
        (("metrics", "recall_level"), 1.5, "metrics.recall_level: 1.5 is out of range; expected a value in (0, 1]"),
        (("metrics", "recall_level"), 0, "metrics.recall_level: 0 is out of range; expected a value in (0, 1]"),
        (("methods", "ants_code", "config", "eta"), -0.1,
         "methods.ants_code.config.eta: -0.1 is out of range; expected a value in [0, 1]"),
        (("demo", "image_size"), 8, "demo.image_size: 8 is out of range; expected a value in [16, 512]"),
        (("mining", "percentile"), 101, "mining.percentile: 101 is out of range; expected a value in [0, 100]"),
    ],
)
def test_out_of_range(params, path, value, expected):
    def mutate(p):
        node = p
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    assert only_problem(params, mutate) == expected


def test_value_not_in_the_allowed_set(params):
    line = only_problem(params, lambda p: p["mllm"].update(backend="gpt4"))
    assert line == "mllm.backend: 'gpt4' is not allowed; allowed values: 'demo', 'transformers', 'openai'"
    line = only_problem(params, lambda p: p["methods"]["ants_paper"]["in_score"].update(far="best"))
    assert line == ("methods.ants_paper.in_score.far: 'best' is not allowed; allowed values: 'ada', 'far_only', "
                    "'near_only'")


def test_missing_key_duplicates_names_and_either_or(params):
    assert only_problem(params, lambda p: p.pop("stream")) == "stream: required key is missing"
    assert only_problem(params, lambda p: p["datasets"]["sun"].pop("checksum")) == \
        "datasets.sun.checksum: required key is missing"
    assert only_problem(params, lambda p: p["run"].update(seeds=[0, 1, 0])) == \
        "run.seeds: the list [0, 1, 0] has duplicate items"
    assert only_problem(params, lambda p: p["datasets"].update({"my set": {"source": "demo", "split": "id"}})) == \
        "datasets: 'my set' is not a valid name (use letters, digits, '_', '.', '-'; start with a letter or digit)"
    assert only_problem(params, lambda p: p["label_sets"].update(x={"builtin": "imagenet1k", "file": "a.txt"})) == \
        "label_sets.x: give exactly one of builtin, file"
    assert only_problem(params, lambda p: p["datasets"]["sun"].update(checksum="sha1:abc")) == (
        "datasets.sun.checksum: 'sha1:abc' does not match the pattern '^(sha256:[0-9a-f]{64}|md5:[0-9a-f]{32})$' "
        "(expected checksum of the downloaded archive: 'sha256:<hex>' or 'md5:<hex>')")


def test_several_problems_are_all_reported_sorted_by_key(params):
    def mutate(p):
        p["stream"]["batch_size"] = -1
        p["demo"]["seed"] = "x"
        p["zzz"] = 1

    found = problems(params, mutate)
    assert found == [
        "demo.seed: 'x' has the wrong type; expected an integer",
        "stream.batch_size: -1 is out of range; expected a value >= 1",
        "zzz: unknown key; allowed keys here: backbones, benchmarks, data, datasets, demo, encoding, label_sets, "
        "methods, metrics, mining, mllm, report, run, stream, sweeps",
    ]
    with pytest.raises(ConfigError, match=r"^params\.yaml is not valid \(3 problems\):\n  - demo\.seed"):
        validate_params({**copy.deepcopy(params), "zzz": 1, "demo": {**params["demo"], "seed": "x"},
                         "stream": {**params["stream"], "batch_size": -1}})


# ------------------------------------------------------------------------------------------
# cross-references


def test_unknown_names_in_run_and_benchmarks(params):
    assert only_problem(params, lambda p: p["run"].update(benchmarks=["demo", "cifar"])) == \
        "run.benchmarks[1]: unknown benchmark 'cifar'; defined benchmarks: demo, mos4, openood_v15"
    assert only_problem(params, lambda p: p["run"].update(methods=["mcm", "knn"])).startswith(
        "run.methods[1]: unknown method 'knn'; defined methods: adaneg, ants_code, ants_paper, mcm, neglabel")
    assert only_problem(params, lambda p: p["benchmarks"]["demo"]["ood"].update(far=["demo_far", "svhn"])).startswith(
        "benchmarks.demo.ood.far[1]: unknown dataset 'svhn'; defined datasets: demo_far, demo_id,")
    assert only_problem(params, lambda p: p["benchmarks"]["demo"].update(backbone="vit_l14")) == \
        "benchmarks.demo.backbone: unknown backbone 'vit_l14'; defined backbones: tiny, vit_b16"
    assert only_problem(params, lambda p: p["benchmarks"]["demo"]["ood"].update(near=["demo_far"])) == \
        "benchmarks.demo.ood.near[0]: 'demo_far' is listed twice (also in benchmarks.demo.ood.far[0])"


def test_active_benchmark_needs_its_paths_and_labels(params):
    found = problems(params, lambda p: p["run"].update(benchmarks=["openood_v15"]))
    instructions = params["datasets"]["openood_imagenet_test"]["instructions"]
    assert "OpenOOD" in instructions
    assert "datasets.openood_imagenet_test.root: not set (null), but run.benchmarks includes 'openood_v15', " \
           f"which uses dataset 'openood_imagenet_test' (ID); {instructions}" in found
    assert "datasets.ssb_hard.list: not set (null), but run.benchmarks includes 'openood_v15', which uses " \
           "dataset 'ssb_hard' (near-OOD); set it to the image list file (see " \
           "datasets.openood_imagenet_test.instructions)" in found
    assert len(found) == 12  # root and list of 6 datasets
    # an inactive benchmark may leave its paths unset (the shipped params do)
    assert params["datasets"]["imagenet_val"]["root"] is None

    def flat_id(p):
        p["datasets"]["demo_id"] = {"source": "local", "layout": "flat", "root": str(ROOT)}

    assert only_problem(params, flat_id) == (
        "datasets.demo_id.layout: 'flat' gives no class labels, but run.benchmarks includes 'demo', which uses "
        "dataset 'demo_id' (ID); use 'class_folders' or 'list'")


def test_group_counts_must_fit_the_mined_bank(params):
    assert only_problem(params, lambda p: p["methods"]["adaneg"]["config"].update(n_groups=501)) == (
        "methods.adaneg.config.n_groups: 501 groups exceed the 500 mined negatives (mining.n_negatives); "
        "expected a value <= 500")


def test_mllm_settings_must_belong_to_the_backend(params):
    assert only_problem(params, lambda p: p["mllm"]["backends"]["demo"].update(dtype="fp16")) == (
        "mllm.backends.demo.dtype: unknown key; allowed keys here: architecture, device, model_dir, seed")
    # a backend that is not selected is still checked against its own schema
    assert only_problem(params, lambda p: p["mllm"]["backends"]["openai"].update(base_url="localhost:8000")) == (
        "mllm.backends.openai.base_url: 'localhost:8000' does not match the pattern '^https?://'")
    # a backend setting at the top of mllm (the old layout) says where it belongs now
    assert only_problem(params, lambda p: p["mllm"].update(seed=0)).startswith(
        "mllm.seed: unknown key (a setting of backend demo: put it under mllm.backends.demo); allowed keys here: "
        "backend, backends, batch_size, cache,")

    def transformers(p):
        p["mllm"]["backend"] = "transformers"
        del p["mllm"]["backends"]["transformers"]["model"]

    assert only_problem(params, transformers) == "mllm.backends.transformers.model: required for backend 'transformers'"

    def missing(p):
        p["mllm"]["backend"] = "openai"
        del p["mllm"]["backends"]["openai"]

    assert only_problem(params, missing) == ("mllm.backends.openai: required, since mllm.backend is 'openai' (its "
                                             "settings: base_url, model, api_key_env, revision, timeout_s, "
                                             "max_retries, backoff_s, max_backoff_s, max_wait_s, concurrency, "
                                             "extra_body)")


def test_switching_the_backend_keeps_the_others_settings_apart(params):
    p = copy.deepcopy(params)
    p["mllm"]["backend"] = "openai"
    assert validate_params(p)["mllm"]["backends"]["demo"] == params["mllm"]["backends"]["demo"]


# ------------------------------------------------------------------------------------------
# the views passed to the rules


def test_plan_config_holds_only_query_deciding_switches(params):
    plan = plan_config(params, "ants_code")
    assert plan["batch_size"] == params["stream"]["batch_size"]
    assert plan["config"]["preset"] == "authors_code"
    assert set(plan["config"]) - {"preset"} <= set(ANTS_PLAN_KEYS)
    changed = copy.deepcopy(params)
    changed["methods"]["ants_code"]["config"].update(lambda_stats="paper", in_score="ada", ens_bank_cap=7)
    changed["methods"]["ants_code"]["in_score"]["far"] = "ada"
    assert plan_config(changed, "ants_code") == plan  # scoring-only: the plan is unchanged
    changed["methods"]["ants_code"]["config"]["eta"] = 0.3
    assert plan_config(changed, "ants_code")["config"]["eta"] == 0.3
    with pytest.raises(ValueError, match="plans exist only for ANTS methods, not 'adaneg'"):
        plan_config(params, "adaneg")


def test_method_config_resolves_the_score_per_split(params):
    far = method_config(params, "ants_code", "far")
    near = method_config(params, "ants_code", "near")
    assert (far["in_score"], near["in_score"]) == ("far_only", "near_only")
    assert method_config(params, "mcm", "far") == {**params["methods"]["mcm"],
                                                   "batch_size": params["stream"]["batch_size"]}


def test_backend_config_is_the_flat_dict_build_backend_takes(params):
    """views.backend_config: the answering keys plus the selected backend's settings, nothing
    of the workflow (cache, gpu, limits) or of the other backends."""
    from ants import mllm

    b = backend_config(params)
    answering = {k: params["mllm"][k] for k in mllm.ANSWERING_KEYS if k in params["mllm"]}
    assert {"backend", "family", "prompts", "generation", "batch_size"} <= set(answering)
    assert b == {**answering, **params["mllm"]["backends"]["demo"]}
    assert set(b) <= set(mllm.ANSWERING_KEYS) | set(cfgmod.MLLM_BACKEND_KEYS["demo"])
    p = copy.deepcopy(params)
    p["mllm"]["backend"] = "transformers"
    assert backend_config(p)["model"] == params["mllm"]["backends"]["transformers"]["model"]
    assert "seed" not in backend_config(p)
    view = metrics_view(params)
    assert view["methods"]["ants_paper"] == {"label": "ANTS (paper)", "method": "ants"}


# ------------------------------------------------------------------------------------------
# the schema stays in step with the code it configures


def test_schema_switches_match_the_method_configs():
    from ants.methods.adaneg import AdaNegConfig
    from ants.methods.ants_tta import AntsConfig

    schema = load_schema()["$defs"]
    # in_score is a field of AntsConfig but set per split by methods.<m>.in_score, never in config;
    # answer_parser may be handled outside AntsConfig (the preset's default)
    ants = set(schema["ants_switches"]["properties"]) - {"preset", "in_score", "answer_parser"}
    assert ants == {f.name for f in dataclasses.fields(AntsConfig)} - {"in_score", "answer_parser"}
    adaneg = set(schema["adaneg_switches"]["properties"]) - {"preset"}
    assert adaneg == {f.name for f in dataclasses.fields(AdaNegConfig)} - {"preset"}
    assert set(ANTS_PLAN_KEYS) <= {f.name for f in dataclasses.fields(AntsConfig)}


def test_schema_mining_and_clip_keys_match_the_code():
    from ants.encoders import _SPEC_KEYS
    from ants.mining import mine_negative_labels

    schema = load_schema()
    mining = set(schema["properties"]["mining"]["properties"])
    assert mining <= set(inspect.signature(mine_negative_labels).parameters)
    assert set(schema["$defs"]["clip"]["properties"]) == set(_SPEC_KEYS)


def test_mllm_backend_keys_match_the_backends():
    from ants import mllm
    from ants.mllm import openai_http

    schema = load_schema()
    for name, keys in cfgmod.MLLM_BACKEND_KEYS.items():
        module = openai_http if name == "openai" else mllm._backend_module(name)
        assert set(module.CONFIG_KEYS) == set(keys), name
        assert set(schema["$defs"][f"mllm_{name}"]["properties"]) == set(keys), name
    assert set(schema["properties"]["mllm"]["properties"]["backends"]["properties"]) == set(mllm.BACKENDS)
    top = set(schema["properties"]["mllm"]["properties"])
    assert top == {"backend", "family", "prompts", "generation", "batch_size", "cache", "gpu", "max_failed_fraction",
                   "max_answer_chars", "max_negative_chars", "backends"}
    assert set(mllm.ANSWERING_KEYS) <= top
    assert set(views.MLLM_WORKFLOW_KEYS) <= top - set(mllm.ANSWERING_KEYS)
