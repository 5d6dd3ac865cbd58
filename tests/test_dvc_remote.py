"""Versioned negatives that travel: an answers log pushed to a local-folder DVC remote from one
throwaway clone and pulled into another arrives byte for byte; `dvc plots show` with the shipped
offline template writes a page with no remote script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ants.answers_log import answer_records, write_answer_log
from ants.mllm.base import Answer, Query

DVC = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(DVC).exists() or shutil.which("git") is None,
                                                   reason="needs git and dvc")]
ROOT = Path(__file__).resolve().parents[1]


def sh(*cmd, cwd):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_answers_log_round_trips_through_a_local_remote(tmp_path):
    origin = tmp_path / "origin"
    origin.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=origin)
    sh(DVC, "init", "-q", cwd=origin)
    queries = [Query(kind="vsnl", class_name="cat"), Query(kind="ens", class_name="dog", image="a.png",
                                                            image_sha256="ab" * 32)]
    answers = [Answer(raw_text="1. lynx\n2. ocelot", negatives=("lynx", "ocelot")),
               Answer(raw_text="<script>x</script> a wolf", negatives=("<script>x</script> a wolf",))]
    log = origin / "results" / "answers" / "demo" / "ants_code" / "demo_far" / "seed0.parquet"
    write_answer_log(log, answer_records(queries, answers, stream_id="demo/ants_code/demo_far/seed0", batch_index=3))
    sh(DVC, "add", "-q", "results/answers", cwd=origin)
    sh("git", "add", "-A", cwd=origin)
    sh("git", "commit", "-q", "-m", "answers", cwd=origin)

    remote = tmp_path / "remote"
    a, b = tmp_path / "a", tmp_path / "b"
    sh("git", "clone", "-q", origin, a, cwd=tmp_path)
    # the clone has the .dvc pointer, not the data: take it from origin's cache, then push
    sh(DVC, "remote", "add", "-d", "local", remote, cwd=a)
    shutil.copytree(origin / ".dvc" / "cache", a / ".dvc" / "cache")
    sh(DVC, "checkout", "-q", cwd=a)
    sh(DVC, "push", "-q", cwd=a)
    sh("git", "commit", "-q", "-am", "remote", cwd=a)

    sh("git", "clone", "-q", a, b, cwd=tmp_path)
    assert not (b / log.relative_to(origin)).exists()
    sh(DVC, "pull", "-q", cwd=b)
    assert (b / log.relative_to(origin)).read_bytes() == log.read_bytes()


def test_dvc_plots_show_with_the_offline_template_needs_no_network(tmp_path):
    repo = tmp_path / "p"
    repo.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=repo)
    sh(DVC, "init", "-q", cwd=repo)
    (repo / "trace.csv").write_text("batch,lambda\n1,0.5\n2,0.6\n3,0.55\n")
    out = repo / "out"
    sh(DVC, "plots", "show", "trace.csv", "-x", "batch", "-y", "lambda", "-o", out,
       "--html-template", ROOT / "plots-template" / "offline.html", cwd=repo)
    html = (out / "index.html").read_text()
    assert "cdn.jsdelivr" not in html and "<script src=" not in html
    assert "vegaEmbed(" in html and "{plot_divs}" not in html
