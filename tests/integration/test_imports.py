"""What gets imported when: planning the workflow imports no heavy library, and each `ants`
command imports only what it uses (each check runs in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ants import stages
from ants.embeddings import write_embeddings

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "torch",
    "torchvision",
    "open_clip",
    "transformers",
    "pandas",
    "pyarrow",
    "sklearn",
    "matplotlib",
    "PIL",
)


def loaded_after(code: str, cwd: Path = ROOT) -> dict:
    """Run ``code`` in a fresh interpreter; the heavy libraries it left in ``sys.modules`` and
    what it printed last (a JSON line)."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"heavy": json.loads(proc.stdout.strip().splitlines()[-1]), "stdout": proc.stdout}


def workflow_imports() -> list[str]:
    """The ``ants`` modules the Snakefile and its rule files import."""
    text = "\n".join(
        p.read_text() for p in [ROOT / "Snakefile", *sorted((ROOT / "workflow").rglob("*.smk"))]
    )
    return sorted(set(re.findall(r"^\s*from (ants[\w.]*) import", text, re.M)))


def test_planning_the_workflow_imports_no_heavy_library():
    """Everything common.smk and the rule files import, and what their input and params
    functions call for every method and dataset of the shipped params.yaml (the config check,
    the views, the method registry, the dataset resolver), in one fresh interpreter."""
    modules = workflow_imports()
    assert {"ants.config", "ants.methods", "ants.views", "ants.datasets.location"} <= set(modules)
    code = "\n".join(
        [
            *(f"import {m}" for m in modules),
            "from ants.config import load_config_files",
            "from ants.datasets.location import manifest_sources",
            "from ants import views",
            "from ants.methods import method_spec",
            "p = load_config_files(['params.yaml'], check_files=False)",
            "for m, section in p['methods'].items():",
            "    scoring = views.static_scoring(p, m)",
            "    scoring and views.scoring_name(scoring)",
            "    views.method_config(p, m, 'far')",
            "    if method_spec(section['method']).uses_answers:",
            "        views.plan_config(p, m); views.answer_config(p, m); views.text_config(p, m)",
            "for s in p.get('sweeps') or {}:",
            "    for point, base, i in views.sweep_points(p, s):",
            "        views.same_as_base(p, point); views.static_scoring(p, point)",
            "        if method_spec(p['methods'][base]['method']).uses_answers:",
            "            views.answers_owner(p, point)",
            "for d, cfg in p['datasets'].items():",
            "    manifest_sources(d, cfg)",
            "views.tables_view(p); views.report_view(p); views.parse_scoring_name('size100-tau0.01-seed0')",
        ]
    )
    assert loaded_after(code)["heavy"] == []


def test_config_check_imports_no_heavy_library():
    out = loaded_after(
        "from ants.cli import main\nassert main(['config', 'check', 'params.yaml']) == 0"
    )
    assert out["heavy"] == []


def test_a_bad_input_error_is_one_line_without_importing_the_other_modules(tmp_path):
    """The CLI's error handler knows every error class without importing their modules."""
    code = (
        f"from ants.cli import main\n"
        f"assert main(['config', 'check', {str(tmp_path / 'missing.yaml')!r}]) == 2"
    )
    assert loaded_after(code)["heavy"] == []
    code = (
        "from ants.cli import main\n"
        "assert main(['download', '--dataset', 'x', '--dataset-json', '{\"source\": \"local\"}',"
        f" '--out', {str(tmp_path)!r}]) == 2"
    )
    assert "torch" not in loaded_after(code)["heavy"]


def test_a_score_job_of_a_feature_method_imports_no_clip_and_no_mllm_library(tmp_path):
    rng = np.random.default_rng(0)

    def unit(n):
        x = rng.standard_normal((n, 16)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    files = {}
    for name, n in (("id", 6), ("ood", 4)):
        rows = pd.DataFrame(
            {
                "id": [f"{name}/{i}" for i in range(n)],
                "path": [f"{name}{i}.png" for i in range(n)],
                "label": np.arange(n) % 2 if name == "id" else -np.ones(n, np.int64),
                "sha256": [f"{name}{i}" for i in range(n)],
            }
        )
        files[name] = write_embeddings(
            tmp_path / f"{name}.parquet", unit(n), rows, {"dataset": name}
        )
    text = pd.DataFrame(
        {
            "class_index": [0, 1, 0, 1],
            "class_name": ["a", "b"] * 2,
            "prompt": ["nice", "nice", "photo", "photo"],
            "template": [""] * 4,
        }
    )
    files["text"] = write_embeddings(tmp_path / "text.parquet", unit(4), text, {})
    stages.stream(files["id"], files["ood"], seed=0, batch_size=4, out=tmp_path / "stream.parquet")
    argv = [
        "-q",
        "score",
        "--stream",
        str(tmp_path / "stream.parquet"),
        "--id-embeddings",
        str(files["id"]),
        "--ood-embeddings",
        str(files["ood"]),
        "--text",
        str(files["text"]),
        "--method-json",
        json.dumps({"method": "mcm", "temperature": 0.01, "batch_size": 4}),
        "--stream-id",
        "t/mcm/ood/seed0",
        "--out",
        str(tmp_path / "scores.parquet"),
    ]
    out = loaded_after(f"from ants.cli import main\nassert main({argv!r}) == 0")
    assert "torch" in out["heavy"]  # MCM's math runs in torch
    assert not {"open_clip", "transformers", "torchvision", "sklearn"} & set(out["heavy"])
    assert (tmp_path / "scores.parquet").is_file()


def test_an_answer_job_for_a_server_imports_no_torch():
    """``ants answer`` with the OpenAI-compatible backend reads the plan and talks HTTP: the
    modules it loads (the stage, the plan reader, the answering layer, the backend, the cache)
    import no torch, CLIP or transformers."""
    code = "import ants.stages, ants.replay, ants.mllm.answering, ants.mllm.openai_http"
    heavy = set(loaded_after(code)["heavy"])
    assert not {"torch", "torchvision", "open_clip", "transformers"} & heavy


@pytest.mark.slow  # builds the demo model and generates once
def test_a_demo_answer_job_served_from_the_cache_loads_no_torch(demo_dir, tmp_path):
    """The demo backend's answers come through transformers and torch; a re-run whose every
    answer is in the cache (a new method variant on the same streams, a rebuilt log) must not
    load either: the first run generates (and imports them), the second, in a fresh
    interpreter, answers the same queries from the cache, byte for byte, without them."""
    config = {"backend": "demo", "family": "llava", "batch_size": 4, "model_dir": str(demo_dir)}
    code = (
        "import json\n"
        "from ants.mllm import build_answerer, Query\n"
        f"a = build_answerer({config!r}, cache_path={str(tmp_path / 'cache.sqlite')!r})\n"
        "got = a([Query('vsnl', c) for c in ('tench', 'goldfish', 'shark')])\n"
        "print(json.dumps([[x.raw_text, list(x.negatives), x.cache_key] for x in got]))\n"
        "print(json.dumps(a.stats))"
    )
    first, second = loaded_after(code), loaded_after(code)
    assert {"torch", "transformers"} <= set(first["heavy"])
    assert first["stdout"].splitlines()[-3] == second["stdout"].splitlines()[-3]
    assert json.loads(second["stdout"].splitlines()[-2])["hits"] == 3
    assert not {"torch", "transformers", "torchvision", "open_clip"} & set(second["heavy"])
