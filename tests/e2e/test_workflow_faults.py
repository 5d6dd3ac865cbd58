"""Fault injection through the workflow (issue 19): faults a real run meets, driven through
Snakemake on the reduced demo (``tests/_workflow.py``), each asserting the one line the user
reads and, where a recovery exists, that a plain re-run ends byte-identical to the
uninterrupted run (``tracked_outputs``) with nothing asked of the MLLM twice.

One finished demo run is built per module; every case works on a copy of it (``_clone``:
``shutil.copy2`` keeps the mtimes, so Snakemake sees nothing to do on the fresh copy).

:data:`FAULT_TABLE` declares one row per fault family (what is injected, what holds, the tests
that check it); ``tools/fault_table.py`` renders it into README's "What survives what" table and
``tests/unit/test_fault_table.py`` checks the two agree, and that every test named exists and is
marked ``faults``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml
from _demo_run import copy_demo_run
from _mllm import serving
from _workflow import (
    BIN,
    ROOT,
    answer_logs,
    answer_stats,
    cache_rows,
    edit_params,
    env,
    interruptible,
    make_copy,
    planned_jobs,
    snakemake,
    test_params,
    tracked_outputs,
)

pytestmark = [pytest.mark.slow, pytest.mark.faults]

#: README's "What survives what": family -> (faults injected, what holds, tests (file::name)).
FAULT_TABLE = {
    "process signals": (
        "SIGINT and SIGTERM to Snakemake's process group during each kind of job (embed, static, "
        "stream, plan, answer, encode_negatives, score, metrics, tables, report); `kill -9` of an "
        "answer job",
        "Snakemake stops, no partial file is left; a plain re-run finishes byte-identical, "
        "no MLLM answer bought twice",
        [
            "tests/e2e/test_workflow_faults.py::test_sigint_and_sigterm_during_each_kind_of_job",
            "tests/e2e/test_workflow.py::test_a_killed_answer_job_leaves_nothing_stale",
            "tests/integration/test_atomic_writes.py",
        ],
    ),
    "damaged artifacts": (
        "each kind of stored file truncated, replaced by garbage, emptied or given a wrong schema; "
        "the answer cache overwritten",
        "one line naming the file and the rebuild; the job moves it to results/damaged/ and a "
        "plain re-run rebuilds it byte-identical (the cache: `ants cache rebuild`)",
        [
            "tests/e2e/test_workflow_faults.py::test_damaged_artifacts_are_set_aside_and_a_plain_rerun_rebuilds_them",
            "tests/e2e/test_workflow.py::test_a_damaged_stream_is_set_aside_by_the_job_that_reads_it_and_a_plain_rerun_rebuilds_it",
            "tests/integration/test_artifacts.py",
            "tests/integration/test_mllm_cache.py",
        ],
    ),
    "MLLM server": (
        "an OpenAI-compatible server on 127.0.0.1 answering 500, 429 + Retry-After, invalid JSON, "
        "stalling past timeout_s, down (503), refusing connections",
        "the answer job fails loudly past max_failed_fraction, failures are never cached; a re-run "
        "against a healthy server asks only what was not answered",
        [
            "tests/e2e/test_workflow_faults.py::test_a_flaky_mllm_server_through_the_workflow",
            "tests/e2e/test_workflow_outage.py",
            "tests/integration/test_mllm_openai.py::test_server_faults_are_failed_queries_never_cached_and_asked_again",
        ],
    ),
    "disk": (
        "the results folder full or read-only (a 1 MB tmpfs, where mounts are allowed); a file "
        "over RLIMIT_FSIZE",
        "one line naming the file and the OS error, nothing half-written; after the fix a plain "
        "re-run finishes byte-identical",
        [
            "tests/e2e/test_workflow_faults.py::test_a_full_or_read_only_results_folder",
            "tests/integration/test_write_errors.py",
        ],
    ),
    "two runs at once": (
        "a second `snakemake all` started in the folder while the first runs",
        "refused by Snakemake's lock with one line; the first finishes intact",
        ["tests/e2e/test_workflow_faults.py::test_two_runs_at_once_in_one_folder"],
    ),
    "own data": (
        "configs/custom.yaml with a corrupt and a zero-byte image, grayscale / CMYK / 16-bit PNGs, "
        "class lists with duplicates, blank lines, non-ASCII names",
        "a bad class list: one line before any job; unusual images are read; an unreadable one "
        "stops the embed job naming it, or is skipped and recorded (data.on_bad_image: skip)",
        [
            "tests/e2e/test_workflow_faults.py::test_own_data_with_unusual_images_and_class_lists",
            "tests/e2e/test_workflow_from_scratch.py::test_corrupt_image_fails_naming_it_or_is_skipped_and_recorded",
        ],
    ),
    "bad experiment value": (
        "`dvc exp run -S methods.adaneg.config.lam=abc`",
        "one line before any job naming the key, and how to restore params.yaml",
        [
            "tests/e2e/test_workflow_from_scratch.py::test_a_failed_dvc_exp_run_says_how_to_restore_params_yaml"
        ],
    ),
}


# --------------------------------------------------------------------------------------------
# the shared finished run


@pytest.fixture(scope="module")
def finished(demo_run):
    """The session's shared finished reduced demo (tests/_demo_run.py, never changed: each case
    takes its own copy), its tracked outputs and answer cache rows."""
    w = demo_run.dir
    return {"run": demo_run, "dir": w, "tracked": tracked_outputs(w), "rows": cache_rows(w)}


def _clone(finished, dest: Path) -> Path:
    """A copy of the finished run that Snakemake finds up to date (mtimes kept)."""
    return copy_demo_run(finished["run"], dest)


def _recovered(w: Path, finished) -> None:
    """After the plain re-run: byte-identical to the uninterrupted run, no answer bought twice
    (the cache holds as many answers as after the uninterrupted run), nothing left to do."""
    assert tracked_outputs(w) == finished["tracked"]
    assert cache_rows(w) == finished["rows"]
    assert answer_stats(w)["failed"] == 0
    assert planned_jobs(w) == {}


def _text(proc) -> str:
    return proc.stdout + proc.stderr


# --------------------------------------------------------------------------------------------
# 1. signals


#: the kinds of job, in the order one DAG runs them, and the rule of each
KINDS = (
    "embed_images",
    "static",
    "stream",
    "plan",
    "answer",
    "encode_negatives",
    "score",
    "metrics",
    "tables",
    "report",
)

#: the `ants` subcommand each kind of job runs (workflow/rules/*.smk)
SUBCOMMAND = {kind: kind.replace("_", "-") for kind in KINDS} | {"metrics": "compute-metrics"}


def _running_outputs(w: Path) -> list[str]:
    """The outputs of the jobs running now (Snakemake's .snakemake/incomplete markers)."""
    folder = w / ".snakemake" / "incomplete"
    out = []
    for marker in folder.glob("*") if folder.is_dir() else []:
        try:
            out.append(base64.urlsafe_b64decode(marker.name).decode())
        except ValueError:
            continue
    return out


def _rule_of(output: str) -> str | None:
    from ants.artifacts import match_path

    if output.startswith("reports/"):
        return "report"
    found = match_path(output)
    return found[0].rule if found else None


def _start(w: Path) -> subprocess.Popen:
    """`snakemake --cores 1 all` (one job at a time) in ``w``, in its own process group, as a
    terminal's foreground job."""
    return subprocess.Popen(
        [BIN / "snakemake", "--cores", "1", "all"],
        cwd=w,
        env=env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=interruptible,
    )


def _job_process_up(group: int, subcommand: str) -> bool:
    """Whether a process of the process group ``group`` runs ``ants {subcommand}`` now (the
    job's Python process itself, not the shell that started it)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            argv = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
        for i, arg in enumerate(argv[:-1]):
            if os.path.basename(arg) == b"ants" and argv[i + 1] == subcommand.encode():
                return True
    return False


def _signal_during(w: Path, rule: str, sig: int) -> tuple[str, subprocess.CompletedProcess]:
    """Run `snakemake all` (one job at a time), send ``sig`` to its process group while a
    ``rule`` job's own process runs (it has been up for a moment: mid-import or mid-write, and
    is checked again just before the signal, so a job that ended meanwhile is not counted and
    the signal never lands on the next job instead); the output that job was writing, and the
    finished run."""
    proc = _start(w)
    hit = None
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and hit is None:
            for output in _running_outputs(w):
                if _rule_of(output) == rule and _job_process_up(proc.pid, SUBCOMMAND[rule]):
                    time.sleep(0.3)
                    if output in _running_outputs(w) and _job_process_up(
                        proc.pid, SUBCOMMAND[rule]
                    ):
                        os.killpg(proc.pid, sig)
                        hit = output
                    break
            time.sleep(0.02)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert hit is not None, f"no {rule} job ran:\n{out[-3000:]}"
    return hit, subprocess.CompletedProcess(proc.args, proc.returncode, out, "")


def _make_due(w: Path, finished, rule: str) -> None:
    """Make sure a ``rule`` job is due: unless one of its tracked outputs is already missing,
    delete the first. (Which jobs an interrupted run finished before the signal is Snakemake's
    scheduling order, and a run that rebuilt an input does not re-run a job whose output is
    still there; the test must not hang on either.)"""
    outputs = sorted(p for p in finished["tracked"] if _rule_of(p) == rule)
    assert outputs, f"no tracked output of {rule}"
    if all((w / p).exists() for p in outputs):
        (w / outputs[0]).unlink()


def test_sigint_and_sigterm_during_each_kind_of_job(finished, tmp_path, record_figure):
    """Two embeddings and a stream deleted: one DAG run passes through every kind of job. For
    each kind, SIGINT (a terminal's Ctrl-C) and then SIGTERM (a scheduler's cancel) hit
    Snakemake's process group while such a job's own process runs (an output of that kind is
    deleted first where none is missing); each time Snakemake stops, the job's output is gone
    (no file that looks complete), and the next plain run goes on. At the end every tracked
    file is byte-identical to the uninterrupted run, no answer bought twice."""
    from ants.artifacts import ArtifactError

    w = _clone(finished, tmp_path / "w")
    for rel in (
        "results/embeddings/tiny/demo_far.parquet",
        "results/embeddings/tiny/demo_near.parquet",
        "results/streams/demo/demo_far/shuffled-bs16/seed0.parquet",
    ):
        (w / rel).unlink()
    t0, kills = time.perf_counter(), []
    for rule in KINDS:
        for sig in (signal.SIGINT, signal.SIGTERM):
            _make_due(w, finished, rule)
            output, proc = _signal_during(w, rule, sig)
            text = proc.stdout
            assert proc.returncode != 0, text[-3000:]
            assert "Traceback" not in text, text[-3000:]
            # Snakemake removed what the job had begun (an atomic writer never renamed its
            # temporary file): the output is absent, or a complete file its reader accepts
            target = w / output
            if target.exists() and target.suffix == ".parquet":
                try:
                    from ants.artifacts import read_arrow

                    read_arrow(target)
                except ArtifactError as err:  # pragma: no cover - the failure message
                    raise AssertionError(
                        f"{signal.Signals(sig).name} during {rule}: {err}"
                    ) from None
            assert not list(w.glob("results/**/.*.tmp*")), sorted(w.glob("results/**/.*.tmp*"))
            kills.append(f"{signal.Signals(sig).name}@{rule}")
    last = snakemake(w, "all")  # the plain re-run
    assert "Traceback" not in _text(last)
    _recovered(w, finished)
    record_figure(
        f"faults: {len(kills)} signals (SIGINT, SIGTERM x {len(KINDS)} kinds of job), "
        f"{time.perf_counter() - t0:.0f} s with the re-runs"
    )


# --------------------------------------------------------------------------------------------
# 2. damaged artifacts


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(4096))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _wrong_schema(path: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    pq.write_table(
        table.rename_columns([f"x_{c}" for c in table.column_names]).replace_schema_metadata(
            table.schema.metadata
        ),
        path,
    )


DAMAGE = {
    "truncated": _truncate,
    "garbage": _garbage,
    "emptied": _empty,
    "wrong schema": _wrong_schema,
}

#: (kind, damage, the damaged file, a file the job that reads it writes: deleted so that it runs)
DAMAGED = [
    (
        "static",
        "emptied",
        "results/static/tiny/demo/demo_far/size100-tau0.01-seed0.parquet",
        "results/plans/demo/ants_code/demo_far/seed0.parquet",
    ),
    (
        "plan",
        "truncated",
        "results/plans/demo/ants_code/demo_near/seed0.parquet",
        "results/answers/demo/ants_code/demo_near/seed0.parquet",
    ),
    (
        "answers",
        "wrong schema",
        "results/answers/demo/ants_paper/demo_far/seed0.parquet",
        "results/negatives-text/demo/ants_paper/demo_far/seed0.parquet",
    ),
    (
        "negative_text",
        "truncated",
        "results/negatives-text/demo/ants_paper/demo_near/seed0.parquet",
        "results/scores/demo/ants_paper/demo_near/seed0.parquet",
    ),
    (
        "scores",
        "garbage",
        "results/scores/demo/adaneg/demo_far/seed0.parquet",
        "results/metrics.json",
    ),
]


def _assert_set_aside(w: Path, failed, cases, damaged: dict) -> None:
    """Each damaged file of ``cases`` stopped the job that read it with one line, naming it, what
    is wrong, and where it was moved; it is there, byte for byte."""
    text = _text(failed)
    assert failed.returncode != 0, text[-3000:]
    assert "Traceback" not in text
    for kind, damage, rel, _ in cases:
        line = next((x for x in text.splitlines() if rel in x and "Moved it aside" in x), None)
        assert line is not None, f"{kind} {damage}:\n{text[-4000:]}"
        below = rel[len("results/") :]
        assert re.search(
            rf"ants [\w-]+: error: {re.escape(rel)} \([^)]+\): .+\. Moved it aside to "
            rf"results/damaged/{re.escape(below)}: a plain re-run of the workflow rebuilds it$",
            line.strip(),
        ), line
        assert not (w / rel).exists()
        assert (w / "results/damaged" / below).read_bytes() == damaged[rel]


def test_damaged_artifacts_are_set_aside_and_a_plain_rerun_rebuilds_them(
    finished, tmp_path, record_figure
):
    """Each kind of stored file damaged (cut short, garbage, emptied, a wrong schema; mtimes kept,
    so each still looks up to date), and a job that reads it made to run: in one run (with
    --keep-going) every such job fails with one line naming its file, what is wrong, and that it
    was moved to results/damaged/; a plain re-run rebuilds them and what depends on them,
    byte-identical to the uninterrupted run, asking the MLLM nothing."""
    w = _clone(finished, tmp_path / "w")
    assert planned_jobs(w) == {}
    damaged = {}
    for _kind, damage, rel, reader_output in DAMAGED:
        target = w / rel
        stat = target.stat()
        DAMAGE[damage](target)
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # still looks up to date
        damaged[rel] = target.read_bytes()
        (w / reader_output).unlink()  # the job that reads it must run

    # the metrics job reads every score table: it runs once the others are rebuilt, in the re-run
    first = [d for d in DAMAGED if d[0] != "scores"]
    failed = snakemake(w, "all", "--keep-going", check=False)
    _assert_set_aside(w, failed, first, damaged)
    failed = snakemake(w, "all", check=False)  # the plain re-run: rebuilds those, meets the last
    _assert_set_aside(w, failed, [d for d in DAMAGED if d[0] == "scores"], damaged)
    for _kind, _damage, rel, _ in first:
        assert (w / rel).is_file()
    rerun = snakemake(w, "all")  # the plain re-run
    assert "Traceback" not in _text(rerun)
    _recovered(w, finished)
    record_figure(
        "faults: damaged "
        + ", ".join(f"{k} ({d})" for k, d, _, _ in DAMAGED)
        + ": each set aside with one line, rebuilt byte-identical by a plain re-run"
    )


# --------------------------------------------------------------------------------------------
# 3. the MLLM server through the workflow

MODEL = "fake-llava-1.5"
FAILED = re.compile(r"(\d+) of (\d+) distinct MLLM queries failed")


#: the faults of the first distinct queries a flaky server meets, in order (then: answers); an
#: answer job stops at its first batch with too many failures, so each comes early
FAULTS = ("429", "500", "invalid json", "stall")


class _Flaky(BaseHTTPRequestHandler):
    """An OpenAI-compatible server: while ``flaky``, a query's fault (:data:`FAULTS`, by the order
    its content first arrived, so that a retry meets the same): HTTP 500,
    a 429 with ``Retry-After: 1`` the first time (then the answer), a 200 whose body is not
    JSON, or no answer until past the client's ``timeout_s``; healthy, every answer."""

    def log_message(self, *args):
        pass

    def _send(self, code: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._send(
            200, json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]}).encode()
        )

    def do_POST(self):
        import hashlib

        st = self.server.state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
        with st["lock"]:
            order = st["order"].setdefault(key, len(st["order"])) if st["flaky"] else len(FAULTS)
            fault = FAULTS[order] if order < len(FAULTS) else "ok"
            seen = st["asked"].get(key, 0)
            st["asked"][key] = seen + 1
            st["log"].append((st["flaky"], key, fault))
        if fault == "500":
            self._send(500, b'{"error": {"message": "internal error"}}')
        elif fault == "429" and seen == 0:
            self._send(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "1"})
        elif fault == "invalid json":
            self._send(200, b'{"choices": [{"message": ')
        elif fault == "stall":
            time.sleep(3)  # past timeout_s: the client has gone
            with contextlib.suppress(OSError):
                self._send(200, b"{}")
        else:
            content = body["messages"][0]["content"]
            text = (
                content
                if isinstance(content, str)
                else next(p["text"] for p in content if p["type"] == "text")
            )
            answer = (
                "1. alpha\n2. beta\n3. gamma\n4. delta\n5. epsilon"
                if "numbered" in text
                else "a red stone"
            )
            self._send(
                200,
                json.dumps(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": MODEL,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": answer},
                            }
                        ],
                    }
                ).encode(),
            )


@pytest.fixture
def flaky_server():
    state = {"lock": threading.Lock(), "flaky": True, "asked": {}, "log": [], "order": {}}
    with serving(_Flaky, state) as srv:
        yield srv


def test_a_flaky_mllm_server_through_the_workflow(finished, tmp_path, flaky_server, record_figure):
    """The demo switched to an OpenAI-compatible backend whose first distinct queries meet a 429
    with Retry-After (answered on its retry), a 500, invalid JSON, a stall past timeout_s: each
    answer job (--keep-going) fails loudly (more than max_failed_fraction failed) and caches
    only what was answered; against the healthy server the same command finishes, asking only
    what was not answered, each once."""
    w = _clone(finished, tmp_path / "w")
    rows_before = cache_rows(w)
    port = flaky_server.server_address[1]

    def to_openai(p):
        p["run"].update(methods=["ants_code"], seeds=[0])
        p["mllm"].update(backend="openai", gpu=False, max_failed_fraction=0.1)
        p["mllm"]["backends"]["openai"] = {
            "base_url": f"http://127.0.0.1:{port}/v1",
            "model": MODEL,
            "api_key_env": None,
            "timeout_s": 1,
            "max_retries": 1,
            "backoff_s": 0.05,
            "max_backoff_s": 0.1,
            "max_wait_s": 2,
        }

    edit_params(w, to_openai)
    st = flaky_server.state
    t0 = time.perf_counter()
    flaky = snakemake(w, "all", "--keep-going", check=False)
    t_flaky = time.perf_counter() - t0
    text = _text(flaky)
    assert flaky.returncode != 0, text[-3000:]
    m = FAILED.search(text)
    assert m and int(m[1]) > 0.1 * int(m[2]), text[-4000:]
    assert "Failed answers are never cached" in text and "Traceback" not in text
    assert "HTTP 500" in text and "timed out after 1 s" in text, text[-4000:]
    assert {f for _, _, f in st["log"]} >= set(FAULTS), st["log"]  # each fault was met
    answered = {k for flag, k, fault in st["log"] if fault in ("ok", "429")}
    failed = {k for flag, k, fault in st["log"] if fault not in ("ok", "429")}
    assert answered and failed and not answered & failed
    # every 429 was retried once, after its Retry-After, and answered
    assert all(st["asked"][k] == 2 for _, k, f in st["log"] if f == "429")
    assert cache_rows(w) - rows_before == len(answered)  # failures never cached

    with st["lock"]:
        st["flaky"] = False
    fixed = snakemake(w, "all")
    assert "Traceback" not in _text(fixed)
    healthy = [k for flag, k, _ in st["log"] if not flag]
    assert len(healthy) == len(set(healthy))  # nothing asked twice
    assert set(healthy) & answered == set()  # nothing answered before asked again
    assert failed <= set(healthy)
    generated = 0
    for path in (w / "results/logs/answer/demo/ants_code").rglob("seed0.log"):
        m2 = re.search(r"(\d+) generated, (\d+) failed\)", path.read_text())
        assert m2 and m2[2] == "0", path.read_text()[-2000:]
        generated += int(m2[1])
    assert generated == len(healthy)
    log = answer_logs(w, seeds=(0,))
    log = log[log["stream_id"].str.startswith("demo/ants_code/")]
    assert len(set(log["stream_id"])) == 2
    assert (log["status"] == "ok").all() and (log["backend"] == "openai").all()
    assert cache_rows(w) - rows_before == log["cache_key"].nunique() == len(answered) + len(healthy)
    assert planned_jobs(w) == {}
    record_figure(
        f"faults: flaky MLLM server: {len(answered)} answered, {len(failed)} failed "
        f"({m[0]}, {t_flaky:.0f} s), {len(healthy)} asked again after the fix"
    )


# --------------------------------------------------------------------------------------------
# 4. a full or read-only results folder


def _can_mount(tmp_path: Path) -> bool:
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    ok = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], capture_output=True
        ).returncode
        == 0
    )
    if ok:
        subprocess.run(["umount", probe], check=True)
    return ok


def test_a_full_or_read_only_results_folder(finished, tmp_path):
    """A score job writing into a 1 MB tmpfs (the scores of one method) that is full: one line
    naming the file and the OS error, no file left that looks complete (not even a temporary
    one); remounted read-only: one line naming the folder before any job; after the fix a plain
    re-run finishes byte-identical."""
    if not _can_mount(tmp_path):
        pytest.skip("needs root and tmpfs mounts (here: not allowed)")
    w = _clone(finished, tmp_path / "w")
    folder = w / "results/scores/demo/adaneg"
    kept = tmp_path / "kept"
    shutil.copytree(folder, kept, copy_function=shutil.copy2)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", folder], check=True)
    try:
        shutil.copytree(kept, folder, copy_function=shutil.copy2, dirs_exist_ok=True)
        rel = "results/scores/demo/adaneg/demo_far/seed0.parquet"
        (w / rel).unlink()
        filler = folder / "filler"
        with open(filler, "wb") as fh:  # fill the disk
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        # full: the score job's writer fails; one line naming the file, no temporary file left
        out = snakemake(w, "all", check=False)
        text = _text(out)
        assert out.returncode != 0, text[-3000:]
        assert (
            f"ants score: failed: cannot write {rel}: [Errno 28] No space left on device; nothing "
            "was written (free some space or make the folder writable, then run it again)"
        ) in text, text[-4000:]
        assert "Traceback" not in text
        assert not (w / rel).exists() and not list((folder / "demo_far").glob(".*tmp"))
        # read-only: refused before any job (Snakemake would fail removing the old output)
        filler.unlink()
        subprocess.run(["mount", "-o", "remount,ro", folder], check=True)
        out = snakemake(w, "all", check=False)
        text = _text(out)
        assert out.returncode != 0, text[-3000:]
        assert (
            "results/scores/demo/adaneg: cannot write there (a read-only file system); remount it "
            "read-write, then run again\nNothing was run."
        ) in text, text[-4000:]
        assert "Traceback" not in text and "Finished jobid" not in text
        subprocess.run(["mount", "-o", "remount,rw", folder], check=True)
        snakemake(w, "all")  # fixed: the plain re-run
        _recovered(w, finished)
    finally:
        subprocess.run(["umount", "-l", folder], check=False)


# --------------------------------------------------------------------------------------------
# 5. two runs at once


def test_two_runs_at_once_in_one_folder(finished, tmp_path):
    """While `snakemake all` rebuilds two score tables and what follows, a second `snakemake all`
    in the same folder is refused by Snakemake's lock with one line; the first finishes, and
    its results are byte-identical to the uninterrupted run."""
    w = _clone(finished, tmp_path / "w")
    for rel in (
        "results/scores/demo/mcm/demo_far/seed0.parquet",
        "results/scores/demo/mcm/demo_near/seed0.parquet",
        "results/metrics.json",
    ):
        (w / rel).unlink()
    first = _start(w)
    try:
        deadline = time.time() + 120
        while not _running_outputs(w) and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert first.poll() is None and _running_outputs(w)
        second = snakemake(w, "all", check=False)
        out, _ = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    text = _text(second)
    assert second.returncode != 0
    assert "Error: Directory cannot be locked." in text, text[-3000:]
    assert "Traceback" not in text
    assert first.returncode == 0, out[-3000:]
    _recovered(w, finished)


# --------------------------------------------------------------------------------------------
# 6. a user's own data


def _own_data(w: Path) -> list[str]:
    """configs/custom.yaml's folders holding unusual images; the class names."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    classes = ["Café crème", "naïve bird", "東京 tower"]
    for c in range(len(classes)):
        folder = w / "data/custom/id" / f"{c:02d}_class"
        folder.mkdir(parents=True)
        for i in range(6):
            rgb = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(folder / f"{i}.png")
        Image.fromarray(rgb[..., 0]).save(folder / "gray.png")  # mode L
        Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
        Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).save(
            folder / "deep16.png"
        )  # mode I;16
        Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(folder / "alpha.png")  # RGBA
    ood = w / "data/custom/ood"
    ood.mkdir(parents=True)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(ood / f"{i}.jpg")
    (ood / "zero.jpg").write_bytes(b"")
    (ood / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    return classes


def test_own_data_with_unusual_images_and_class_lists(tmp_path):
    """configs/custom.yaml on one's own folders: a class list with a duplicate fails before any
    job with one line; blank lines and non-ASCII names are fine; grayscale, CMYK, 16-bit and
    RGBA images are read; a zero-byte and a corrupt image stop the embed job naming them, and
    with data.on_bad_image: skip they are skipped and recorded in the manifest."""
    from ants.artifacts import read_id_text, read_manifest
    from ants.embeddings import read_embeddings

    w = make_copy(tmp_path / "own", test_params())
    shutil.copytree(ROOT / "configs", w / "configs")
    classes = _own_data(w)
    names = w / "data/custom/classnames.txt"
    names.write_text(f"{classes[0]}\n{classes[1]}\n\n{classes[2]}\nCAFÉ CRÈME\n", encoding="utf-8")
    (w / "tiny.yaml").write_text(
        yaml.safe_dump(
            {
                "run": {"methods": ["mcm", "neglabel"], "seeds": [0]},
                "benchmarks": {"custom": {"backbone": "tiny"}},
                "mllm": {"backend": "demo", "gpu": False},
            }
        )
    )
    targets = [
        "results/embeddings/tiny/custom_id.parquet",
        "results/embeddings/tiny/custom_ood.parquet",
    ]
    config = ["--configfile", "configs/custom.yaml", "tiny.yaml"]

    dup = snakemake(w, *targets, *config, check=False)
    text = _text(dup)
    assert dup.returncode != 0
    assert (
        "data/custom/classnames.txt: duplicate class name 'CAFÉ CRÈME' on lines 1 and 5 (names are "
        "compared case-insensitively)"
    ) in text, text[-3000:]
    assert "Nothing was run." in text and not (w / "results").exists()

    names.write_text(
        "\n".join([classes[0], "", classes[1], "   ", classes[2]]) + "\n", encoding="utf-8"
    )
    bad = snakemake(w, *targets, *config, "--keep-going", check=False)
    assert bad.returncode != 0
    assert (w / targets[0]).is_file()  # grayscale, CMYK, 16-bit, RGBA: all read
    log = (w / "results/logs/embed_images/tiny/custom_ood.log").read_text()
    assert "ood/zero.jpg" in log and "data.on_bad_image: skip" in log, log[-3000:]
    assert "Traceback" not in log

    (w / "tiny.yaml").write_text(
        yaml.safe_dump(
            {
                "run": {"methods": ["mcm", "neglabel"], "seeds": [0]},
                "benchmarks": {"custom": {"backbone": "tiny"}},
                "data": {"on_bad_image": "skip"},
                "mllm": {"backend": "demo", "gpu": False},
            }
        )
    )
    snakemake(w, *targets, *config)
    manifest, _ = read_manifest(w / "results/manifests/custom_ood.parquet")
    unreadable = manifest[~manifest["readable"]].sort_values("path")
    assert [Path(p).name for p in unreadable["path"]] == ["corrupt.png", "zero.jpg"]
    assert unreadable["error"].str.len().gt(0).all()
    feats, rows, meta = read_embeddings(w / targets[1])
    assert feats.shape[0] == 8 and len(meta["skipped"]) == 2
    id_manifest, _ = read_manifest(w / "results/manifests/custom_id.parquet")
    assert id_manifest["readable"].all() and len(id_manifest) == 3 * 10
    assert sorted(set(id_manifest["label"])) == [0, 1, 2]
    # the non-ASCII names, blank lines dropped, are the ID labels the text features encode
    snakemake(w, "results/text/tiny/custom.parquet", *config)
    _features, names = read_id_text(w / "results/text/tiny/custom.parquet")
    assert list(names) == classes
