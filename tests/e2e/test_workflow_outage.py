"""An MLLM server outage, then its fix, through Snakemake (``backend: openai``).

A fake OpenAI-compatible server on 127.0.0.1 (in this process, in a thread) first answers
every chat completion with HTTP 503 ("down"): ``snakemake all`` must fail loudly, naming how
many queries failed and why, leave no answers log and cache nothing. Then the server is fixed
and the SAME command is run again: it must finish, every planned query answered once (the
failed ones were never cached, and nothing is asked twice), and nothing is left to do.

The run starts from a copy of the session's finished demo run (tests/_demo_run.py) without its
answers (logs, cache) and metrics: what comes before the MLLM is done and up to date, what
needs it is to be made.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from _demo_run import copy_demo_run
from _mllm import serving
from _workflow import answer_logs, answer_stats, planned_jobs, snakemake, test_params, write_params

pytestmark = [pytest.mark.slow, pytest.mark.faults]

MODEL = "fake-llava-1.5"
ENS_ANSWER = "a red stone"
VSNL_ANSWER = "1. alpha\n2. beta\n3. gamma\n4. delta\n5. epsilon"
FAILED = re.compile(r"(\d+) of (\d+) distinct MLLM queries failed")


class _Handler(BaseHTTPRequestHandler):
    """``GET /v1/models`` lists MODEL; ``POST /v1/chat/completions`` answers 503 while the
    server is down, else a valid completion (a VSNL prompt asks for numbered class names)."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, code: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        st = self.server.state
        with st["lock"]:
            st["models_calls"] += 1
        if self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self):
        st = self.server.state
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found"}})
            return
        body = json.loads(raw)
        content = body["messages"][0]["content"]
        text = content if isinstance(content, str) else next(p["text"] for p in content if p["type"] == "text")
        kind = "vsnl" if "numbered" in text else "ens"
        with st["lock"]:
            phase = st["phase"]
            st["requests"][phase].append((kind, hashlib.sha256(raw).hexdigest()))
        if phase == "down":
            self._send(503, {"error": {"message": "Service Unavailable: the model is not loaded", "code": 503}})
            return
        answer = VSNL_ANSWER if kind == "vsnl" else ENS_ANSWER
        self._send(200, {
            "id": f"chatcmpl-{len(st['requests'][phase])}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                         "finish_reason": "stop"}],
        })


@pytest.fixture
def server():
    state = {"lock": threading.Lock(), "phase": "down", "models_calls": 0,
             "requests": {"down": [], "fixed": []}}
    with serving(_Handler, state) as srv:
        yield srv


def _cache_rows(w: Path) -> int:
    path = w / "results" / "mllm-cache.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] if "answers" in tables else 0


def _params(port: int) -> dict:
    p = test_params()
    p["run"].update(methods=["ants_code"], seeds=[0])
    p["mllm"].update(backend="openai", gpu=False)
    p["mllm"]["backends"]["openai"] = {
        "base_url": f"http://127.0.0.1:{port}/v1", "model": MODEL, "api_key_env": None,
        "timeout_s": 2, "max_retries": 1, "backoff_s": 0.05, "max_backoff_s": 0.1, "max_wait_s": 1,
    }
    return p


def _without_answers(w: Path) -> Path:
    """The finished run ``w`` with no MLLM answer anywhere (answers logs, their job logs, the
    cache) and no metrics: every answer job, and all that follows, is to be run."""
    for rel in ("results/answers", "results/logs/answer"):
        shutil.rmtree(w / rel)
    for rel in ("results/mllm-cache.sqlite", "results/metrics.json"):
        (w / rel).unlink()
    return w


def test_an_mllm_outage_fails_loudly_caches_nothing_and_the_same_command_finishes_after_the_fix(
    demo_run, tmp_path, server, record_figure
):
    w = _without_answers(copy_demo_run(demo_run, tmp_path / "w"))
    write_params(w, _params(server.server_address[1]))
    assert planned_jobs(w)["answer"] == 2  # ants_code x {demo_far, demo_near} x seed 0
    st = server.state

    # -- phase 1: the server is down -------------------------------------------------------
    t0 = time.perf_counter()
    down = snakemake(w, "all", check=False)
    t_down = time.perf_counter() - t0
    out = down.stdout + down.stderr
    assert down.returncode != 0, out[-4000:]
    assert st["requests"]["down"], "no chat completion reached the server:\n" + out[-4000:]
    counts = [(int(a), int(b)) for a, b in FAILED.findall(out)]
    assert counts, out[-6000:]
    assert "HTTP 503" in out and "Service Unavailable" in out, out[-6000:]
    assert "Failed answers are never cached" in out
    # every failed answer job's log names its count and reason as well
    failed_logs = {}
    for log in sorted((w / "results/logs/answer").rglob("*.log")):
        m = FAILED.search(log.read_text())
        if m:
            failed_logs[log] = (int(m[1]), int(m[2]))
            assert "HTTP 503" in log.read_text()
    assert failed_logs, sorted(map(str, (w / "results/logs").rglob("*.log")))
    # the whole outage: every distinct query of every answer job that ran failed, each tried
    # 1 + max_retries = 2 times
    assert all(f == t > 0 for f, t in failed_logs.values()), failed_logs
    assert len(st["requests"]["down"]) == 2 * sum(f for f, _ in failed_logs.values())
    # nothing stale, nothing silent: no answers log, nothing cached, no metrics
    assert not list(w.glob("results/answers/**/*.parquet"))
    assert _cache_rows(w) == 0
    assert not (w / "results/metrics.json").exists()

    # -- phase 2: the server is fixed; the same command again -----------------------------
    with st["lock"]:
        st["phase"] = "fixed"
    t0 = time.perf_counter()
    fixed = snakemake(w, "all", check=False)
    t_fixed = time.perf_counter() - t0
    assert fixed.returncode == 0, (fixed.stdout + fixed.stderr)[-6000:]
    log = answer_logs(w, seeds=(0,))
    assert len(set(log["stream_id"])) == 2  # ants_code x {demo_far, demo_near} x seed 0
    assert (log["status"] == "ok").all(), log[log["status"] != "ok"][["kind", "status", "reason"]]
    assert set(log["kind"]) == {"ens", "vsnl"} and (log["backend"] == "openai").all()
    distinct = log["cache_key"].nunique()
    stats = answer_stats(w, seeds=(0,))
    assert stats["failed"] == 0 and stats["queries"] == len(log)
    assert stats["generated"] == distinct, stats
    assert _cache_rows(w) == distinct
    # the fixed server was asked exactly the distinct queries: nothing came from phase 1 (it
    # all failed) and nothing was asked twice
    asked = st["requests"]["fixed"]
    assert len(asked) == distinct, (len(asked), distinct, stats)
    assert len({h for _, h in asked}) == len(asked)
    assert sorted(k for k, _ in asked) == sorted(log.drop_duplicates("cache_key")["kind"])
    metrics = json.loads((w / "results/metrics.json").read_text())
    assert set(metrics["demo"]) == {"ants_code"}
    assert set(metrics["demo"]["ants_code"]) == {"far", "near"}
    assert planned_jobs(w) == {}
    record_figure(f"MLLM outage: outage run {t_down:.0f} s ({len(st['requests']['down'])} requests, failed {failed_logs}); "
          f"fixed run {t_fixed:.0f} s ({len(asked)} requests, {distinct} distinct queries, {stats})")
