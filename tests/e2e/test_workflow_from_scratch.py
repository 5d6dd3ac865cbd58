"""The workflow end to end from nothing: runs that start from an empty copy of the repository's
workflow (not from the session's finished demo run, tests/_demo_run.py), because a build from
scratch, bad input before any job, or another config is their point.

They use the reduced demo of ``_workflow.test_params`` (see tests/e2e/test_workflow.py); kept
apart from that module's chain of changes to one copy of the finished run so that the two
pytest-xdist workers can run them side by side.
"""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from _workflow import (
    BIN,
    ROOT,
    answer_logs,
    edit_params,
    make_copy,
    run,
    snakemake,
    test_params,
)


def test_bad_params_fail_before_any_job_naming_the_key(tmp_path):
    p = test_params()
    p["stream"]["batch_size"] = 0
    p["methods"]["adaneg"]["config"]["lamda"] = 0.1
    w = make_copy(tmp_path / "c", p)
    out = snakemake(w, "all", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "stream.batch_size: 0 is out of range; expected a value >= 1" in text
    assert "methods.adaneg.config.lamda: unknown key (did you mean 'lam'?)" in text
    assert "Nothing was run." in text
    assert not (w / "results").exists()


@pytest.mark.faults
def test_corrupt_image_fails_naming_it_or_is_skipped_and_recorded(tmp_path):
    w = make_copy(tmp_path / "d")
    snakemake(w, "results/data/demo/far.txt")
    bad = w / "results/data/demo/far/color_field/0003.png"
    bad.write_bytes(b"not an image at all")
    target = "results/embeddings/tiny/demo_far.parquet"
    out = snakemake(w, target, check=False)
    assert out.returncode != 0
    job_log = (w / "results/logs/embed_images/tiny/demo_far.log").read_text()
    assert "far/color_field/0003.png" in job_log and "data.on_bad_image: skip" in job_log
    assert not (w / target).exists()

    edit_params(w, lambda p: p["data"].update(on_bad_image="skip"))
    snakemake(w, target)
    from ants.artifacts import read_manifest
    from ants.embeddings import read_embeddings

    manifest, _ = read_manifest(w / "results/manifests/demo_far.parquet")
    row = manifest[manifest["path"].str.endswith("0003.png")].iloc[0]
    assert not row["readable"] and row["error"].startswith("UnidentifiedImageError")
    feats, rows, meta = read_embeddings(w / target)
    assert len(rows) == len(manifest) - 1 and feats.shape[0] == len(manifest) - 1
    assert [s["path"] for s in meta["skipped"]] == [row["path"]]


def test_a_custom_folder_dataset_runs_end_to_end_on_the_demo_models(tmp_path):
    """configs/custom.yaml, the documented way to run ANTS on one's own data: class folders
    (ID), a flat folder (OOD) and a class-name list, here with the demo's random-weight models."""
    from PIL import Image

    w = make_copy(tmp_path / "custom", test_params())
    shutil.copytree(ROOT / "configs", w / "configs")
    # as in a clone: the demo's tracked metrics and tables are there (issue 21 item 1: the summary
    # printed these instead of the custom run's)
    shutil.copytree(ROOT / "results" / "metrics", w / "results" / "metrics")
    shutil.copytree(ROOT / "results" / "tables", w / "results" / "tables")
    shutil.copy2(ROOT / "results" / "metrics.json", w / "results" / "metrics.json")
    rng = np.random.default_rng(0)
    classes = ["red square", "green circle", "blue stripe"]
    for c, name in enumerate(classes):
        folder = w / "data/custom/id" / f"{c:02d}_{name.replace(' ', '_')}"
        folder.mkdir(parents=True)
        for i in range(12):
            pixels = np.zeros((32, 32, 3), np.uint8)
            pixels[..., c] = 200
            pixels += rng.integers(0, 40, pixels.shape, dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    (w / "data/custom/ood").mkdir(parents=True)
    for i in range(15):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            w / f"data/custom/ood/{i}.jpg"
        )
    (w / "data/custom/classnames.txt").write_text("\n".join(classes) + "\n")
    demo_models = {
        "run": {"methods": ["neglabel", "ants_code"], "seeds": [0]},
        "benchmarks": {"custom": {"backbone": "tiny"}},
        "mining": test_params()["mining"],
        "stream": {"batch_size": 8},
        "methods": {
            "neglabel": {"n_groups": 5},
            "ants_code": {
                "config": {
                    "preset": "authors_code",
                    "near_top_k": 2,
                    "ens_max_updates": 2,
                    "ens_trigger_size": 4,
                    "vsnl_start": 1,
                    "vsnl_interval": 2,
                    "group_size": 100,
                }
            },
        },
        "mllm": {"backend": "demo", "gpu": False, "batch_size": 4},
    }
    (w / "demo-models.yaml").write_text(yaml.safe_dump(demo_models))
    out = snakemake(w, "all", "--configfile", "configs/custom.yaml", "demo-models.yaml")
    metrics = json.loads((w / "results/metrics.json").read_text())
    assert set(metrics) == {"custom"} and set(metrics["custom"]) == {"neglabel", "ants_code"}
    assert set(metrics["custom"]["ants_code"]) == {"far"}  # one OOD set: its split's average
    table = pd.read_csv(w / "results/metrics/custom.csv").set_index(["method", "dataset"])
    assert table.loc[("ants_code", "custom_ood"), "n_seeds"] == 1
    manifest = pq.read_table(w / "results/manifests/custom_id.parquet").to_pandas()
    assert len(manifest) == 36 and sorted(set(manifest["label"])) == [0, 1, 2]
    log = answer_logs(w, seeds=(0,))
    assert log["stream_id"].str.startswith("custom/ants_code/custom_ood/").all()
    text = out.stdout + out.stderr
    assert "Its numbers carry NO meaning" in text
    # the terminal summary is this run's: the custom benchmark's metrics and answers alone
    rows = [x for x in text.splitlines() if re.match(r"^(custom|demo) ", x)]
    assert [x.split()[:2] for x in rows] == [["custom", "NegLabel"], ["custom", "ANTS"]]
    auroc = table.loc[("neglabel", "custom_ood"), "auroc"]
    assert metrics["custom"]["neglabel"]["far"]["auroc"] == auroc
    assert f"custom_ood: AUROC {auroc:.2f}" in rows[0]
    assert f"MLLM answers: {len(log)} queries in 1 streams: " in text


@pytest.mark.faults
def test_a_failed_dvc_exp_run_says_how_to_restore_params_yaml(tmp_path):
    """`dvc exp run -S methods.adaneg.config.lam=abc` fails before any job, and since DVC leaves
    the bad value in params.yaml (every later run would fail), the error says how to restore
    it; restored as it says, the workflow is valid again (issue 21 item 9)."""
    w = make_copy(tmp_path / "exp")
    committed = (w / "params.yaml").read_text()
    run(["git", "init", "-q"], w)
    run(["git", "add", "-A"], w)
    run(["git", "commit", "-qm", "base"], w)
    out = run([BIN / "dvc", "exp", "run", "-S", "methods.adaneg.config.lam=abc"], w, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "methods.adaneg.config.lam: 'abc' has the wrong type; expected a number" in text
    assert "Nothing was run." in text and not (w / "results" / "manifests").exists()
    assert "`git checkout HEAD -- params.yaml`" in text and "differs from the last commit" in text
    assert "lam: abc" in (w / "params.yaml").read_text()  # what DVC left behind
    run(["git", "checkout", "HEAD", "--", "params.yaml"], w)
    assert (w / "params.yaml").read_text() == committed
    assert snakemake(w, "-n", "all").returncode == 0
