"""params.yaml validation (ants.config + ants/schemas/params.schema.yaml) and the config views."""

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
    merge_config,
    read_yaml,
    validate_params,
)
from ants.views import (
    ANTS_PLAN_KEYS,
    answer_config,
    backend_config,
    method_config,
    metrics_view,
    plan_config,
    report_view,
    sweep_view,
    tables_view,
)

ROOT = Path(__file__).resolve().parents[2]


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
        (tmp_path / "val" / f"n{i:08d}" / "ILSVRC2012_val.JPEG").touch()
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
        "methods, metrics, mining, mllm, paper, report, run, stream, sweeps",
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
        "run.methods[1]: unknown method 'knn'; defined methods: adaneg, ants_code, ants_paper, eoe, glmcm, mcm, "
        "neglabel")
    assert only_problem(params, lambda p: p["benchmarks"]["demo"]["ood"].update(far=["demo_far", "svhn"])).startswith(
        "benchmarks.demo.ood.far[1]: unknown dataset 'svhn'; defined datasets: demo_far, demo_id,")
    assert only_problem(params, lambda p: p["benchmarks"]["demo"].update(backbone="vit_l14")) == \
        "benchmarks.demo.backbone: unknown backbone 'vit_l14'; defined backbones: tiny, tiny_seed1, vit_b16"
    assert only_problem(params, lambda p: p["benchmarks"]["demo"]["ood"].update(near=["demo_far"])) == \
        "benchmarks.demo.ood.near[0]: 'demo_far' is listed twice (also in benchmarks.demo.ood.far[0])"


def test_active_benchmark_needs_its_paths_and_labels(params, tmp_path):
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

    labels = tmp_path / "classnames.txt"  # a non-demo ID set needs its label file on disk
    labels.write_text("".join(f"class {c}\n" for c in "abcdefghij"))  # as many as the demo's

    def flat_id(p):
        p["datasets"]["demo_id"] = {"source": "local", "layout": "flat", "root": str(ROOT)}
        p["label_sets"]["demo"]["file"] = str(labels)

    assert only_problem(params, flat_id) == (
        "datasets.demo_id.layout: 'flat' gives no class labels, but run.benchmarks includes 'demo', which uses "
        "dataset 'demo_id' (ID); use 'class_folders' or 'list'")


def test_group_counts_must_fit_the_mined_bank(params):
    assert only_problem(params, lambda p: p["methods"]["adaneg"]["config"].update(n_groups=501)) == (
        "methods.adaneg.config.n_groups: 501 groups exceed the 500 mined negatives (mining.n_negatives); "
        "expected a value <= 500")


def test_mllm_settings_must_belong_to_the_backend(params):
    assert only_problem(params, lambda p: p["mllm"]["backends"]["demo"].update(processor_kwargs={})) == (
        "mllm.backends.demo.processor_kwargs: unknown key; allowed keys here: architecture, device, dtype, "
        "model_dir, seed")
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


def test_max_negative_chars_reaches_the_lenient_parser_only(params):
    """The authors' parser has no length limit (their code keeps every negative): its answer
    jobs get None, so mllm.max_negative_chars never re-runs them and the parser never sees it."""
    from ants.mllm.parsing import negative_chars_limit

    code, paper = answer_config(params, "ants_code"), answer_config(params, "ants_paper")
    assert (code["parser"], code["answering"]["max_negative_chars"]) == ("authors", None)
    assert (paper["parser"], paper["answering"]["max_negative_chars"]) == ("lenient", 200)
    changed = copy.deepcopy(params)
    changed["mllm"]["max_negative_chars"] = 50
    assert answer_config(changed, "ants_code") == code
    assert answer_config(changed, "ants_paper")["answering"]["max_negative_chars"] == 50
    # what each answer job hands the parser is valid for its style
    for cfg in (code, paper):
        negative_chars_limit(cfg["parser"], cfg["answering"]["max_negative_chars"])
    lenient_code = copy.deepcopy(params)
    lenient_code["methods"]["ants_code"]["config"]["answer_parser"] = "lenient"
    assert answer_config(lenient_code, "ants_code")["answering"]["max_negative_chars"] == 200


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
    assert set(b) <= set(mllm.ANSWERING_KEYS) | set(mllm.BACKEND_SETTINGS["demo"])
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
    # source / file choose a published list instead of mining (ants.stages reads them)
    assert mining - {"source", "file"} <= set(inspect.signature(mine_negative_labels).parameters)
    assert set(schema["$defs"]["clip"]["properties"]) == set(_SPEC_KEYS)


def test_mllm_backend_keys_match_the_backends():
    from ants import mllm

    schema = load_schema()
    for name, keys in mllm.BACKEND_SETTINGS.items():
        assert set(schema["$defs"][f"mllm_{name}"]["properties"]) == set(keys), name
        assert set(mllm.BACKEND_REQUIRED_SETTINGS[name]) <= set(keys), name
    assert set(schema["properties"]["mllm"]["properties"]["backends"]["properties"]) == set(mllm.BACKENDS)
    top = set(schema["properties"]["mllm"]["properties"])
    assert top == {"backend", "family", "prompts", "generation", "batch_size", "cache", "gpu", "max_failed_fraction",
                   "max_answer_chars", "max_negative_chars", "backends"}
    assert set(mllm.ANSWERING_KEYS) <= top
    assert set(views.MLLM_WORKFLOW_KEYS) <= top - set(mllm.ANSWERING_KEYS)


# ------------------------------------------------------------------------------------------
# issue 9.3: what `ants config check` used to call valid


def test_prompt_template_with_an_unknown_placeholder(params):
    (line,) = problems(params, lambda p: p["mllm"]["prompts"].update(ens="Describe {x}"))
    assert line.startswith("mllm.prompts.ens: ") and "{x}" in line and "{c}" in line


def test_generation_settings_with_unknown_keys_or_negative_budget(params):
    found = problems(params, lambda p: p["mllm"]["generation"].update(ens={"max_new_tokens": -5, "top_p": 0.9}))
    assert len(found) == 2, found
    assert any(p.startswith("mllm.generation.ens.max_new_tokens: ") and "-5" in p for p in found)
    assert any(p.startswith("mllm.generation.ens.top_p: ") and "max_new_tokens" in p for p in found)
    (line,) = problems(params, lambda p: p["mllm"]["generation"].update(vsnl={"max_new_tokens": 32.0}))
    assert line.startswith("mllm.generation.vsnl.max_new_tokens: ") and "32.0" in line


@pytest.mark.parametrize(("path", "value"), [(("stream", "batch_size"), 32.0), (("mining", "n_negatives"), 500.0),
                                             (("methods", "neglabel", "n_groups"), 5.0)])
def test_a_float_where_a_whole_number_is_needed(params, path, value):
    def mutate(p):
        node = p
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    key = ".".join(path)
    assert only_problem(params, mutate) == (f"{key}: {value} has the wrong type; expected an integer (a whole number: "
                                            f"write {int(value)}, without the decimal point)")


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("methods", "adaneg", "config", "lam"), float("nan"),
         "methods.adaneg.config.lam: nan is not allowed; expected a finite number >= 0"),
        (("mining", "percentile"), float("inf"),
         "mining.percentile: inf is not allowed; expected a finite number in [0, 100]"),
        (("metrics", "recall_level"), float("nan"),
         "metrics.recall_level: nan is not allowed; expected a finite number in (0, 1]"),
        (("methods", "mcm", "temperature"), float("-inf"),
         "methods.mcm.temperature: -inf is not allowed; expected a finite number > 0"),
        (("methods", "ants_code", "config", "fixed_lambda"), float("nan"),
         "methods.ants_code.config.fixed_lambda: nan is not allowed; expected a finite number in [0, 1] or null"),
    ],
)
def test_nan_and_inf_are_rejected(params, path, value, expected):
    def mutate(p):
        node = p
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    assert only_problem(params, mutate) == expected


def test_nan_in_a_free_form_setting_is_rejected_too(params):
    found = problems(params, lambda p: p["mllm"]["generation"].update(ens={"temperature": float("nan")}))
    assert found and all(p.startswith("mllm.generation.ens.temperature: ") for p in found)
    assert "NaN and infinite values are not allowed; expected a finite number" in found[0] or "nan" in found[0]


def test_nan_written_in_yaml_is_caught_by_load_params(tmp_path):
    text = (ROOT / "params.yaml").read_text().replace("  recall_level: 0.95", "  recall_level: .nan")
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_params(tmp_path / "p.yaml", check_files=False)
    assert info.value.problems == ["metrics.recall_level: nan is not allowed; expected a finite number in (0, 1]"]


def test_the_answer_cache_must_not_be_a_folder(params, tmp_path):
    assert only_problem(params, lambda p: p["mllm"].update(cache=str(tmp_path))) == (
        f"mllm.cache: '{tmp_path}' is a folder; expected the path of the SQLite answer cache file "
        "(e.g. results/mllm-cache.sqlite)")


def test_in_score_inside_an_ants_config_is_rejected_by_name(params):
    assert only_problem(params, lambda p: p["methods"]["ants_code"]["config"].update(in_score="ada")) == (
        "methods.ants_code.config.in_score: not allowed here; set methods.ants_code.in_score: "
        "{far: ..., near: ...} (the score per OOD split)")


def test_new_settings_have_their_allowed_values(params):
    assert params["stream"]["order"] == "shuffled" and params["metrics"]["fpr95_roc"] == "all"
    assert (params["mllm"]["max_failed_fraction"], params["mllm"]["max_answer_chars"],
            params["mllm"]["max_negative_chars"]) == (0, 20000, 200)
    assert only_problem(params, lambda p: p["metrics"].update(fpr95_roc="sklearn")) == \
        "metrics.fpr95_roc: 'sklearn' is not allowed; allowed values: 'all', 'openood'"
    assert only_problem(params, lambda p: p["mllm"].update(max_failed_fraction=1.5)) == \
        "mllm.max_failed_fraction: 1.5 is out of range; expected a value in [0, 1]"
    assert only_problem(params, lambda p: p["mllm"].update(max_answer_chars=0)) == \
        "mllm.max_answer_chars: 0 is out of range; expected a value >= 1"
    assert only_problem(params, lambda p: p["methods"]["ants_paper"]["config"].update(answer_parser="strict")) == \
        "methods.ants_paper.config.answer_parser: 'strict' is not allowed; allowed values: 'lenient', 'authors'"
    assert only_problem(params, lambda p: p["methods"]["ants_paper"]["config"].update(fixed_lambda=1.2)) == \
        "methods.ants_paper.config.fixed_lambda: 1.2 is out of range; expected a value in [0, 1]"
    assert only_problem(params, lambda p: p["methods"]["adaneg"]["config"].update(preset="code")) == \
        "methods.adaneg.config.preset: 'code' is not allowed; allowed values: 'paper', 'authors_code'"
    ok = copy.deepcopy(params)
    ok["methods"]["ants_paper"]["config"].update(answer_parser="authors", fixed_lambda=None)
    ok["methods"]["adaneg"]["config"]["preset"] = "authors_code"
    ok["stream"]["order"] = "ood_first"
    validate_params(ok)


# ------------------------------------------------------------------------------------------
# reading: duplicate keys; merging config files as Snakemake does


def test_duplicate_keys_name_the_file_the_key_and_both_lines(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("methods:\n  adaneg:\n    config:\n      lam: 0.1\n      beta: 5\n      lam: 0.3\n"
                    "run:\n  seeds: [0]\nrun:\n  seeds: [1]\nlist:\n  - {a: 1, a: 2}\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(path)
    assert info.value.problems == [
        f"methods.adaneg.config.lam: duplicate key in {path} (line 4 and line 6); YAML would silently keep only "
        "the last one: remove one of them",
        f"run: duplicate key in {path} (line 7 and line 9); YAML would silently keep only the last one: remove "
        "one of them",
        f"list[0].a: duplicate key in {path} (line 12 and line 12); YAML would silently keep only the last one: "
        "remove one of them",
    ]
    assert str(info.value).startswith(f"{path} is not valid (3 problems):")
    # the same through load_params and load_config_files
    with pytest.raises(ConfigError, match=r"methods\.adaneg\.config\.lam: duplicate key"):
        load_params(path)
    with pytest.raises(ConfigError, match=r"methods\.adaneg\.config\.lam: duplicate key"):
        load_config_files([ROOT / "params.yaml", path])


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\n")
    assert read_yaml(path) == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}}


def test_merge_config_is_snakemakes_update_config():
    from snakemake.utils import update_config

    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": 1, "g": {"h": 1}}
    over = {"a": {"c": [3], "d": {"x": 2}}, "f": {"now": "a mapping"}, "g": {}, "new": [1]}
    expected = copy.deepcopy(base)
    update_config(expected, copy.deepcopy(over))
    merged = merge_config(base, over)
    assert merged == expected
    assert merged == {"a": {"b": 1, "c": [3], "d": {"e": 1, "x": 2}}, "f": {"now": "a mapping"}, "g": {"h": 1},
                      "new": [1]}
    assert base["a"]["c"] == [1, 2]  # inputs are not modified


def test_load_config_files_merges_in_order_and_names_the_file(tmp_path, params):
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("stream: {batch_size: 8}\nrun: {seeds: [5, 6]}\n")
    two.write_text("stream: {batch_size: 4}\n")
    p = load_config_files([ROOT / "params.yaml", one, two])
    assert p["stream"] == {"batch_size": 4, "order": "shuffled"} and p["run"]["seeds"] == [5, 6]
    assert p["run"]["methods"] == params["run"]["methods"]
    p = load_config_files([ROOT / "params.yaml", one], overrides={"stream": {"batch_size": 2}})
    assert p["stream"]["batch_size"] == 2
    two.write_text("stream: {batch_size: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_config_files([ROOT / "params.yaml", one, two])
    assert info.value.problems == [f"stream.batch_size: 0 is out of range; expected a value >= 1 (set in {two})"]
    with pytest.raises(ConfigError) as info:
        load_config_files([ROOT / "params.yaml"], overrides={"run": {"seeds": "0"}})
    assert info.value.problems == ["run.seeds: '0' has the wrong type; expected a list (set in --config; Snakemake "
                                   "passes values nested in a --config mapping as strings: set them in a "
                                   "--configfile instead)"]
    with pytest.raises(ConfigError) as info:
        load_config_files([ROOT / "params.yaml", tmp_path / "nope.yaml"])
    assert info.value.problems == [f"{tmp_path / 'nope.yaml'}: config file not found"]


# ------------------------------------------------------------------------------------------
# sweeps


def test_shipped_sweeps_are_small_and_cover_the_ablations(params):
    sweeps = params["sweeps"]
    settings = {s["setting"] for s in sweeps.values()}
    assert settings == {"methods.{method}.config.near_top_k", "methods.{method}.config.near_delta",
                        "methods.{method}.config.ens_max_updates", "methods.{method}.config.eta",
                        "methods.{method}.config.initial_threshold", "mllm.prompts.ens",
                        "methods.{method}.config.fixed_lambda", "stream.order",
                        # the paper's Figure 7 panels (a, e, f, g) and Table 4 (six rows)
                        "methods.{method}.config.initial_detector", "benchmarks.demo.backbone",
                        "mllm.prompts", "mllm", "methods.{method}"}
    assert all(2 <= len(s["values"]) <= 4 for name, s in sweeps.items() if name != "ablation")
    assert sweeps["ablation"]["labels"] == ["A", "B", "C", "D", "E", "F"]
    assert params["paper"]["ablation"] == "ablation" and len(params["paper"]["panels"]) == 8
    assert sweeps["fixed_lambda"]["values"] == [None, 0.25, 0.5, 0.75]
    assert sweeps["fixed_lambda"]["labels"][0] == "adaptive"
    assert sweeps["ens_words"]["labels"] == [4, 8, 12]
    assert sweeps["stream_order"]["values"] == ["shuffled", "id_first", "ood_first"]
    from ants.mllm.prompts import PROMPTS

    assert sweeps["ens_words"]["default"] == PROMPTS["llava"]["ens"]
    assert cfgmod.selected_sweeps(params) == list(sweeps)  # run.sweeps absent: all of them
    assert cfgmod.sweep_targets(params, "eta") == [("ants_paper", "methods.ants_paper.config.eta"),
                                                   ("ants_code", "methods.ants_code.config.eta")]


def test_sweep_view_lists_each_points_score_files(params):
    """ants.views.sweep_view (the sweep_metrics rule's params): the points of a sweep with their score
    files; the point at params.yaml's own value reads the main run's files (its base method's)."""
    view = sweep_view(params, "eta")
    assert (view["sweep"], view["setting"]) == ("eta", "methods.{method}.config.eta")
    assert view["benchmarks"] == {"demo": {"ood": params["benchmarks"]["demo"]["ood"]}}
    assert view["metrics"] == params["metrics"] and view["methods"]["mcm"] == {"label": "MCM"}
    points = {(p["method"], p["value"]): p for p in view["points"]}
    assert sorted(points) == sorted((m, v) for m in ("ants_paper", "ants_code") for v in (0.3, 0.5, 0.7))
    default = points[("ants_code", params["methods"]["ants_code"]["config"].get("eta", 0.5))]
    assert default["is_default"] and default["label"] == default["value"]
    seeds = params["sweeps"]["eta"].get("seeds") or params["run"]["seeds"]
    assert default["files"] == [["demo", ood, s, f"results/scores/demo/ants_code/{ood}/seed{s}.parquet"]
                                for _, ood in [("far", o) for o in params["benchmarks"]["demo"]["ood"]["far"]]
                                + [("near", o) for o in params["benchmarks"]["demo"]["ood"].get("near", [])]
                                for s in seeds]
    other = points[("ants_code", 0.7)]
    assert not other["is_default"] and all("/ants_code~eta~" in f[3] for f in other["files"])


def test_report_view_is_the_tables_view_with_the_answer_length(params):
    """The report's params: what the tables show (presets, in_score, seeds) and mllm.max_answer_chars."""
    view = report_view(params)
    tables = tables_view(params)
    assert view["report"] == {**params["report"], "max_answer_chars": params["mllm"]["max_answer_chars"]}
    assert {k: v for k, v in view.items() if k != "report"} == {k: v for k, v in tables.items() if k != "report"}
    assert view["methods"]["ants_code"]["preset"] == params["methods"]["ants_code"]["config"].get(
        "preset", "authors_code")


def test_sweep_cross_references(params):
    assert only_problem(params, lambda p: p["run"].update(sweeps=["eta", "nope"])) == (
        "run.sweeps[1]: unknown sweep 'nope'; defined sweeps: ablation, backbone, ens_updates, ens_words, eta, "
        "fixed_lambda, initial_detector, mllm, nim_threshold, prompts, stream_order, vsnl_delta, vsnl_top_k")
    assert only_problem(params, lambda p: p["sweeps"]["eta"].update(methods=["ants_code", "knn"])).startswith(
        "sweeps.eta.methods[1]: unknown method 'knn'; defined methods: adaneg,")
    assert only_problem(params, lambda p: p["sweeps"]["eta"].update(benchmarks=["cifar"])) == (
        "sweeps.eta.benchmarks[0]: unknown benchmark 'cifar'; defined benchmarks: demo, mos4, openood_v15")
    assert only_problem(params, lambda p: p["sweeps"]["fixed_lambda"].update(labels=["a", "b"])) == (
        "sweeps.fixed_lambda.labels: 2 label(s) for 4 value(s); give one label per value")
    assert only_problem(params, lambda p: p["sweeps"]["eta"].update(default=0.4)) == (
        "sweeps.eta.default: 0.4 is not one of the values [0.3, 0.5, 0.7]")
    assert only_problem(params, lambda p: p["sweeps"]["eta"].update(values=[0.3, 0.3])) == (
        "sweeps.eta.values: the list [0.3, 0.3] has duplicate items")


def test_sweep_setting_must_exist_for_each_method(params):
    assert only_problem(params, lambda p: p["sweeps"]["vsnl_top_k"].update(methods=["adaneg"])) == (
        "sweeps.vsnl_top_k.setting: 'methods.adaneg.config.near_top_k' for method 'adaneg' is not a setting: "
        "methods.adaneg.config.near_top_k: unknown key; allowed keys here: authors_slots, beta, gap, grouping_seed, "
        "lam, memory_length, n_groups, preset, proxy, tau, threshold, truncate_beta")
    assert only_problem(params, lambda p: p["sweeps"]["eta"].update(methods=["mcm"])) == (
        "sweeps.eta.setting: 'methods.mcm.config.eta' for method 'mcm' does not exist: methods.mcm has no key "
        "'config' (its keys: label, method, temperature)")
    assert only_problem(params, lambda p: p["sweeps"]["stream_order"].update(setting="stream.shuffle")) == (
        "sweeps.stream_order.setting: 'stream.shuffle' is not a setting: stream.shuffle: unknown key; allowed "
        "keys here: batch_size, order")
    # an optional setting absent from params.yaml is fine (fixed_lambda is not set there)
    assert "fixed_lambda" not in params["methods"]["ants_code"]["config"]


def test_every_sweep_value_is_validated_for_its_setting(params):
    def bad_values(p):
        p["sweeps"]["eta"]["values"] = [0.5, 1.5]
        p["sweeps"]["ens_words"]["values"] = ["Describe {x}", "Fine {c}.", "Also fine."]
        p["sweeps"]["ens_words"].pop("default")
        p["sweeps"]["stream_order"]["values"] = ["shuffled", "random"]
        p["sweeps"]["stream_order"]["default"] = "shuffled"

    found = problems(params, bad_values)
    assert found[0] == "sweeps.eta.values[1]: methods.ants_paper.config.eta: 1.5 is out of range; expected a value in [0, 1]"
    assert found[1] == "sweeps.eta.values[1]: methods.ants_code.config.eta: 1.5 is out of range; expected a value in [0, 1]"
    assert found[2].startswith("sweeps.ens_words.values[0]: mllm.prompts.ens: ") and "{x}" in found[2]
    assert found[3] == ("sweeps.stream_order.values[1]: stream.order: 'random' is not allowed; allowed values: "
                        "'shuffled', 'id_first', 'ood_first'")
    assert len(found) == 4


def test_benchmarks_of_selected_sweeps_need_their_data(params):
    def sweep_on_mos4(p):
        p["sweeps"]["eta"]["benchmarks"] = ["mos4"]
        p["run"]["sweeps"] = ["eta"]

    found = problems(params, sweep_on_mos4)
    assert found[0].startswith("datasets.imagenet_val.root: not set (null), but sweep 'eta' uses benchmark 'mos4', "
                               "which uses dataset 'imagenet_val' (ID); ImageNet-1k val is registration-gated")
    p = copy.deepcopy(params)
    p["sweeps"]["eta"]["benchmarks"] = ["mos4"]
    p["run"]["sweeps"] = ["ens_updates"]  # not selected: its benchmark's data is not needed
    assert cfgmod.active_benchmarks(p) == ["demo"]
    validate_params(p)


# ------------------------------------------------------------------------------------------
# data on disk, checked before any job


def _local(p, name, **cfg):
    p["datasets"][name] = {"source": "local", **cfg}
    p["benchmarks"]["demo"]["ood"]["far"] = [name]


def test_missing_or_wrong_local_data_is_named(params, tmp_path):
    missing = tmp_path / "nowhere"
    assert only_problem(params, lambda p: _local(p, "mine", layout="flat", root=str(missing))) == (
        f"datasets.mine.root: '{missing}' does not exist, but run.benchmarks includes 'demo', which uses dataset "
        "'mine' (far-OOD); set it to a folder holding the images")
    afile = tmp_path / "a.txt"
    afile.write_text("x")
    assert only_problem(params, lambda p: _local(p, "mine", layout="flat", root=str(afile))).startswith(
        f"datasets.mine.root: '{afile}' is a file, not a folder, but run.benchmarks includes 'demo'")
    (tmp_path / "imgs").mkdir()
    assert only_problem(params, lambda p: _local(p, "mine", layout="class_folders", root=str(tmp_path / "imgs"))) == (
        f"datasets.mine.root: '{tmp_path / 'imgs'}' has no class sub-folders, but layout 'class_folders' expects one "
        "sub-folder per class; fix the folder or the layout")
    assert only_problem(params, lambda p: _local(p, "mine", layout="list", root=str(tmp_path / "imgs"),
                                                 list="test.txt")) == (
        "datasets.mine.list: 'test.txt' not found (neither as given nor relative to datasets.mine.root), but "
        "run.benchmarks includes 'demo', which uses dataset 'mine' (far-OOD); set it to the image list file")
    (tmp_path / "imgs" / "test.txt").write_text("a.png\n")  # relative to root: found
    p = copy.deepcopy(params)
    _local(p, "mine", layout="list", root=str(tmp_path / "imgs"), list="test.txt", instructions="get it from X")
    validate_params(p)
    assert only_problem(params, lambda p: _local(p, "mine", layout="flat", root=str(missing),
                                                 instructions="get it from X")).endswith("(far-OOD); get it from X")
    # not checked for a dataset no active benchmark uses, nor without check_files
    p = copy.deepcopy(params)
    p["datasets"]["mine"] = {"source": "local", "layout": "flat", "root": str(missing)}
    validate_params(p)
    _local(p, "mine", layout="flat", root=str(missing))
    validate_params(p, check_files=False)


def test_download_stand_ins_and_label_files_are_checked(params, tmp_path):
    def mirror(p):
        p["run"]["benchmarks"] = ["mos4"]
        p["datasets"]["imagenet_val"]["root"] = str(tmp_path / "val")
        for i in range(1000):
            (tmp_path / "val" / f"n{i:08d}").mkdir(parents=True, exist_ok=True)
            (tmp_path / "val" / f"n{i:08d}" / "x.JPEG").touch()
        p["datasets"]["sun"]["mirror"] = str(tmp_path / "no-mirror")
        p["datasets"]["places"]["extracted"] = str(tmp_path)

    found = problems(params, mirror)
    assert found == [
        f"datasets.sun.mirror: '{tmp_path / 'no-mirror'}' is not a folder, but run.benchmarks includes 'mos4', "
        "which uses dataset 'sun' (far-OOD); give an existing folder or null (then the archive is downloaded from "
        "datasets.sun.url)",
        f"datasets.places.extracted: '{tmp_path}' has no 'Places/images' (datasets.places.root), but run.benchmarks "
        "includes 'mos4', which uses dataset 'places' (far-OOD); point it at the folder the archive extracts into",
    ]

    for c in "ab":
        (tmp_path / "id" / c).mkdir(parents=True)
        (tmp_path / "id" / c / "1.png").touch()

    def label_file(p):
        p["datasets"]["demo_id"] = {"source": "local", "layout": "class_folders", "root": str(tmp_path / "id")}
        p["label_sets"]["demo"] = {"file": str(tmp_path / "names.txt")}
        p["run"]["sweeps"] = []  # the vsnl_top_k sweep asks for up to 5 classes

    assert only_problem(params, label_file) == (
        f"label_sets.demo.file: '{tmp_path / 'names.txt'}' not found, but run.benchmarks includes 'demo', whose "
        "label set it is; give a text file with one class name per line (line order = class index)")
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    assert only_problem(params, label_file) == (
        f"datasets.demo_id.root: '{tmp_path / 'id'}' has 2 class sub-folders, but its label set 'demo' has 3 classes "
        "(class index = sorted folder order); give a folder with one sub-folder per class")
    (tmp_path / "id" / "c").mkdir()
    (tmp_path / "id" / "c" / "1.png").touch()
    p = copy.deepcopy(params)
    label_file(p)
    validate_params(p)
    # the demo's label file is written by the demo_data rule: not required beforehand
    assert not (ROOT / params["label_sets"]["demo"]["file"]).exists() or True
    q = copy.deepcopy(params)
    q["label_sets"]["demo"]["file"] = str(tmp_path / "not-yet.txt")
    validate_params(q)


def test_a_fixed_lambda_sweep_needs_a_method_that_reads_lambda(params):
    """ants_code reports far_only / near_only: a fixed lambda cannot change its scores."""
    assert only_problem(params, lambda p: p["sweeps"]["fixed_lambda"].update(methods=["ants_paper", "ants_code"])) == (
        "sweeps.fixed_lambda.methods: 'ants_code' reports in_score {\"far\": \"far_only\", \"near\": \"near_only\"}, which never "
        "reads lambda, so 'methods.ants_code.config.fixed_lambda' changes nothing; sweep a method with in_score 'ada'")


def test_merged_sweep_values_and_the_paper_section_are_checked(params):
    """A sweep with merge: true sets several keys at once (an ablation row); each merged value
    is validated where it lands, and the paper section names defined sweeps."""
    from ants.views import point_params

    assert only_problem(params, lambda p: p["sweeps"]["ablation"]["values"][0]["config"].update(nim=3)) == (
        "sweeps.ablation.values[0]: methods.ants_paper.config.nim: 3 has the wrong type; expected true or false")
    assert only_problem(params, lambda p: p["sweeps"]["ablation"]["values"].__setitem__(1, 7)) == (
        "sweeps.ablation.values[1]: 7 is not a mapping; with merge: true each value is merged into "
        "'methods.ants_paper'")
    assert only_problem(params, lambda p: p["sweeps"]["prompts"].update(setting="stream.order")) == (
        "sweeps.prompts.setting: 'stream.order' is 'shuffled', not a mapping; merge: true merges each value "
        "into a mapping")
    assert only_problem(params, lambda p: p["paper"].update(panels=["eta", "nope"])) == (
        "paper.panels[1]: unknown sweep 'nope'; defined sweeps: ablation, backbone, ens_updates, ens_words, eta, "
        "fixed_lambda, initial_detector, mllm, nim_threshold, prompts, stream_order, vsnl_delta, vsnl_top_k")
    assert only_problem(params, lambda p: p["paper"].pop("ablation")) == (
        "paper.ablation: required, since paper.tables lists 'ablation' (the sweep whose points are the "
        "ablation rows)")
    # a merged point keeps the base method's other settings and changes what the row says
    p, base = point_params(params, "ants_paper~ablation~0")
    assert base == "ants_paper"
    section = p["methods"]["ants_paper"]
    assert section["config"] == {**params["methods"]["ants_paper"]["config"], "nim": False}
    assert section["in_score"] == {"far": "far_only", "near": "far_only"}
    assert params["methods"]["ants_paper"]["config"].get("nim") is None  # the params are untouched
    mllm, _ = point_params(params, "ants_paper~mllm~1")
    assert mllm["mllm"]["family"] == "qwen2vl" and mllm["mllm"]["backends"]["demo"]["architecture"] == "qwen2vl"
    assert mllm["mllm"]["backends"]["demo"]["seed"] == params["mllm"]["backends"]["demo"]["seed"]


# ------------------------------------------------------------------------------------------
# class folders and class names; settings that must fit the data (issue 21 items 5 and 8)


def _custom_id(p, root, names_file, *, sweeps=False):
    """The demo benchmark with a local class-folder ID set and a class-name file."""
    p["datasets"]["demo_id"] = {"source": "local", "layout": "class_folders", "root": str(root)}
    p["label_sets"]["demo"] = {"file": str(names_file)}
    if not sweeps:
        p["run"]["sweeps"] = []


def _folders(root, names, images=1):
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(images):
            (root / name / f"{i}.png").touch()


def test_class_names_out_of_the_folders_order_are_refused_naming_the_folder(params, tmp_path):
    """Folders named like classes but listed in another order (folder '日本' would have got
    'dog'): refused, with the order the names must follow."""
    _folders(tmp_path / "id", ["cat", "dog", "日本"])
    names = tmp_path / "names.txt"
    names.write_text("日本\ncat\ndog\n")
    line = only_problem(params, lambda p: _custom_id(p, tmp_path / "id", names))
    assert line == (
        "datasets.demo_id.root: class folder 'cat' is class 0 (the 1st folder in sorted order), whose name "
        "in label set 'demo' (label_sets.demo.file) is '日本', but 'cat' is class 1 there (2 more folders are "
        "named like another class); the class names must be in the sorted order of the folders (cat, dog, 日本): "
        "put them in that order, or rename the folders")
    names.write_text("cat\ndog\n日本\n")  # the sorted folder order: valid
    p = copy.deepcopy(params)
    _custom_id(p, tmp_path / "id", names)
    validate_params(p)


@pytest.mark.parametrize(("folders", "names"), [
    (["00_red_square", "01_green_circle", "02_blue_stripe"], ["red square", "green circle", "blue stripe"]),
    (["001.Black_footed_Albatross", "002.Laysan_Albatross"], ["Black-footed Albatross", "Laysan albatross"]),
    (["n01440764", "n01443537", "n01484850"], ["tench", "goldfish", "great white shark"]),  # wnids: not judged
    (["a", "b", "c"], ["zebra", "yak", "xerus"]),  # names unrelated to the folders: not judged
])
def test_class_folders_in_the_names_order_or_named_otherwise_are_accepted(params, tmp_path, folders, names):
    _folders(tmp_path / "id", folders)
    (tmp_path / "names.txt").write_text("\n".join(names) + "\n")
    p = copy.deepcopy(params)
    _custom_id(p, tmp_path / "id", tmp_path / "names.txt")
    p["methods"]["ants_code"]["config"]["near_top_k"] = 1
    validate_params(p)


def test_class_name_key_and_misplaced_folders():
    from ants.labels import class_name_key, misplaced_class_folders

    assert class_name_key("001.Black_footed_Albatross") == "black footed albatross"
    assert class_name_key(" 03_Red  Square ") == "red square"
    assert class_name_key("2001") == "2001"  # a number alone is a name
    assert misplaced_class_folders(["cat", "dog", "fox"], ["dog", "cat", "fox"]) == [(0, 1), (1, 0)]
    assert misplaced_class_folders(["cat", "dog"], ["cat", "dog"]) == []
    # two names with one key (the index prefix dropped) are not judged
    assert misplaced_class_folders(["1_dog", "2_dog"], ["2 dog", "1 dog"]) == []


def test_an_empty_class_folder_is_refused_before_any_job(params, tmp_path):
    _folders(tmp_path / "id", ["a", "b", "c"])
    (tmp_path / "id" / "b" / "0.png").unlink()
    (tmp_path / "id" / "b" / "notes.txt").write_text("not an image")
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    assert only_problem(params, lambda p: _custom_id(p, tmp_path / "id", tmp_path / "names.txt")) == (
        f"datasets.demo_id.root: class folder 'b' of '{tmp_path / 'id'}' holds no image file (.jpg, .jpeg, "
        ".png; datasets.demo_id.extensions); a class without test images is a mistake: put its images there, "
        "or remove the folder and its class name")
    # an image in a sub-folder of the class counts (the manifest walks class folders recursively)
    (tmp_path / "id" / "b" / "deeper").mkdir()
    (tmp_path / "id" / "b" / "deeper" / "x.JPG").touch()
    p = copy.deepcopy(params)
    _custom_id(p, tmp_path / "id", tmp_path / "names.txt")
    validate_params(p)


def test_the_manifest_job_refuses_an_empty_class_folder_too(tmp_path):
    from ants.datasets import DatasetError
    from ants.datasets.manifests import list_class_folders

    _folders(tmp_path, ["a", "b"])
    (tmp_path / "c").mkdir()
    with pytest.raises(DatasetError, match=r"dataset 'x': class folder 'c' of .* holds no image file \(.png\)"):
        list_class_folders(tmp_path, (".png",), "x")


def test_duplicate_class_names_are_refused_before_any_job(params, tmp_path):
    _folders(tmp_path / "id", ["a", "b", "c"])
    names = tmp_path / "names.txt"
    names.write_text("dog\ncat\nDog\n")
    assert only_problem(params, lambda p: _custom_id(p, tmp_path / "id", names)) == (
        f"label_sets.demo.file: {names}: duplicate class name 'Dog' on lines 1 and 3 (names are compared "
        "case-insensitively); give every class one line (the label set of benchmark 'demo')")


def test_near_top_k_must_not_exceed_the_classes(params, tmp_path):
    _folders(tmp_path / "id", ["a", "b"])
    (tmp_path / "names.txt").write_text("a\nb\n")
    # the demo's ants_code takes near_top_k 3 of its classes: this set has 2
    assert only_problem(params, lambda p: _custom_id(p, tmp_path / "id", tmp_path / "names.txt")) == (
        "methods.ants_code.config.near_top_k: 3 is more than the 2 classes of label set 'demo' of benchmark "
        "'demo' (near_subset 'top_k' takes the near_top_k most predicted ID classes); expected a value <= 2")
    # a sweep point too (vsnl_top_k: 1, 3, 5), named by its value
    found = problems(params, lambda p: (_custom_id(p, tmp_path / "id", tmp_path / "names.txt", sweeps=True),
                                        p["methods"]["ants_code"]["config"].update(near_top_k=2)))
    assert [x.split(": methods.")[0] for x in found] == ["sweeps.vsnl_top_k.values[1]", "sweeps.vsnl_top_k.values[2]"]
    assert found[1].endswith("near_top_k: 5 is more than the 2 classes of label set 'demo' of benchmark 'demo' "
                             "(near_subset 'top_k' takes the near_top_k most predicted ID classes); expected a "
                             "value <= 2")
    # the paper's preset takes a fraction of the classes: near_top_k does not count there
    p = copy.deepcopy(params)
    _custom_id(p, tmp_path / "id", tmp_path / "names.txt")
    p["methods"]["ants_code"]["config"].update(near_top_k=50, near_subset="top_fraction")
    validate_params(p)


def _mining_pool(names, **mining):
    """The candidate pool NegMining itself reports, from its own error for a too large count."""
    from ants.mining import mine_negative_labels

    with pytest.raises(ValueError, match="exceeds the candidate pool") as info:
        mine_negative_labels(names, lambda texts, template: None, n_negatives=10**7, progress=False, **mining)
    return int(str(info.value).split("only ")[1].split(" candidates")[0])


def test_n_negatives_must_fit_the_candidate_pool(params, tmp_path):
    from ants.wordnet import LEXNAMES

    keep = {"noun.shape", "adj.ppl"}
    mining = {"exclude_lexnames": sorted(set(LEXNAMES) - keep), "drop_adjectives_that_are_nouns": True}
    names = ["circle", "square", "red thing"]  # two of them are WordNet shape nouns: not candidates
    pool = _mining_pool(names, **mining)
    assert pool == _mining_pool(["no such lemma"], **mining) - 2
    _folders(tmp_path / "id", names)
    (tmp_path / "names.txt").write_text("circle\nred thing\nsquare\n")  # the sorted folder order

    def too_many(p, n):
        _custom_id(p, tmp_path / "id", tmp_path / "names.txt")
        p["methods"]["ants_code"]["config"]["near_top_k"] = 1
        p["mining"].update(n_negatives=n, **mining)

    from ants.mining import candidate_pools
    from ants.wordnet import load_corpus

    pools = candidate_pools(load_corpus(), names, exclude_lexnames=mining["exclude_lexnames"])
    assert len(pools.nouns) + len(pools.adjectives) == pool
    assert only_problem(params, lambda p: too_many(p, pool + 1)) == (
        f"mining.n_negatives: {pool + 1} is more than the {pool} WordNet candidates NegMining can draw from with "
        f"mining.exclude_lexnames {cfgmod._show(mining['exclude_lexnames'])} for label set 'demo' "
        f"({len(pools.nouns)} nouns, {len(pools.adjectives)} adjectives); expected a value <= {pool}, or exclude "
        "fewer lexnames")
    p = copy.deepcopy(params)
    too_many(p, pool)
    validate_params(p)
    # without the class names (the demo's are generated by a job) the pool before them decides
    p = copy.deepcopy(params)
    p["mining"].update(n_negatives=pool + 3, **mining)
    p["label_sets"]["demo"]["file"] = str(tmp_path / "generated-later.txt")
    with pytest.raises(ConfigError, match=rf"mining.n_negatives: {pool + 3} is more than the {pool + 2} "):
        validate_params(p)


def test_the_answer_cache_must_be_writable(params, tmp_path):
    (tmp_path / "afile").write_text("x")
    cache = tmp_path / "afile" / "sub" / "cache.sqlite"
    assert only_problem(params, lambda p: p["mllm"].update(cache=str(cache))) == (
        f"mllm.cache: '{cache}' cannot be created: '{tmp_path / 'afile'}' is a file, not a folder; expected the "
        "path of the SQLite answer cache file (e.g. results/mllm-cache.sqlite)")
    p = copy.deepcopy(params)
    p["mllm"]["cache"] = str(tmp_path / "new" / "folders" / "cache.sqlite")  # created by the answer job
    validate_params(p)
    import os

    if os.geteuid() == 0:
        pytest.skip("root may write anywhere: a read-only folder cannot be shown")
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        assert only_problem(params, lambda p: p["mllm"].update(cache=str(tmp_path / "ro" / "c.sqlite"))) == (
            f"mllm.cache: '{tmp_path / 'ro' / 'c.sqlite'}' cannot be written: this user may not write in "
            f"'{tmp_path / 'ro'}' (where SQLite keeps its -wal and -shm files); give a path in a folder you "
            "can write")
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_an_unknown_lexname_to_exclude_is_named_before_the_mining_job(params):
    assert only_problem(params, lambda p: p["mining"].update(exclude_lexnames=["noun.persn"])) == (
        "mining.exclude_lexnames[0]: 'noun.persn' is not a WordNet 3.0 lexicographer file (did you mean "
        "'noun.person'?); expected names such as 'noun.person', 'adj.pert' (ants.wordnet.LEXNAMES)")
