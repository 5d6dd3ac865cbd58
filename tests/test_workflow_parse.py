"""Planning the workflow (Snakemake's parse and DAG) on a copy of the repository: it imports no
torch, and the manifest rule depends on a dataset's image list wherever the manifest stage
reads it from (ants.datasets.location, the one resolver)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_workflow import NOTHING, make_copy, run, snakemake, test_params

pytestmark = pytest.mark.slow


def test_a_dry_run_of_the_demo_imports_no_torch(tmp_path, record_figure):
    """``snakemake -n`` of the whole demo DAG (every rule's params and input functions run)
    imports neither torch nor the CLIP and MLLM libraries. (pandas is imported by Snakemake's
    own SLURM executor plugin; ants's parse-time modules import none: tests/test_imports.py.)"""
    w = make_copy(tmp_path / "w")
    start = time.perf_counter()
    proc = run(
        [sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "--cores", "1", "all"], w
    )
    seconds = time.perf_counter() - start
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {
        m
        for m in imported
        if m.split(".")[0] in {"torch", "torchvision", "open_clip", "transformers", "sklearn"}
    }
    assert heavy == set(), sorted(heavy)[:10]
    assert {"ants.config", "ants.views", "ants.methods"} <= imported
    assert "Job stats:" in proc.stdout + proc.stderr  # the whole DAG was planned
    record_figure(
        f"snakemake -n of the demo (with -X importtime): {seconds:.1f} s, no torch imported"
    )


def test_editing_an_image_list_given_relative_to_the_dataset_root_reruns_the_manifest(tmp_path):
    """``list: lists/mine.txt`` is not a file in the working directory, so the manifest stage
    reads it relative to ``root``; the manifest rule must depend on that file."""
    from PIL import Image

    p = test_params()
    p["datasets"]["mine"] = {
        "source": "local",
        "layout": "list",
        "root": "data/mine",
        "list": "lists/mine.txt",
    }
    w = make_copy(tmp_path / "w", p)
    rng = np.random.default_rng(0)
    for i in range(3):
        path = w / "data/mine/imgs" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
    image_list = w / "data/mine/lists/mine.txt"
    image_list.parent.mkdir(parents=True)
    image_list.write_text("imgs/0.png 0\nimgs/1.png 1\n")
    assert not (w / "lists/mine.txt").exists()
    target = "results/manifests/mine.parquet"

    snakemake(w, target)
    out = snakemake(w, "-n", target)
    assert NOTHING in out.stdout + out.stderr

    time.sleep(1.1)  # a coarse file-system clock still sees the edit as newer
    image_list.write_text("imgs/0.png 0\nimgs/1.png 1\nimgs/2.png 0\n")
    out = snakemake(w, "-n", target)
    text = out.stdout + out.stderr
    assert NOTHING not in text and "rule manifest:" in text
    assert "data/mine/lists/mine.txt" in text  # named as the updated input
    snakemake(w, target)
    from ants.artifacts import read_manifest

    frame, meta = read_manifest(w / target)
    assert frame["path"].tolist() == [
        Path(w / "data/mine/imgs" / f"{i}.png").relative_to(w).as_posix() for i in range(3)
    ]
    assert meta["list"] == "data/mine/lists/mine.txt"
