"""Shared test fixtures and the tiers. Tests run offline: no model or dataset is ever downloaded.

Tiers, by folder (each test gets its folder's marker: ``pytest -m unit``):

* ``tests/unit/``: pure functions on arrays and small files (seconds);
* ``tests/integration/``: the CLI, stores, backends, readers, the report, the configs, on built
  fixtures and tiny models (a few minutes in all; a few slow ones are marked ``slow``);
* ``tests/e2e/``: the workflow end to end (Snakemake, DVC, SLURM, a real server, a fresh
  install, a browser): every one of them is ``slow``.

``make test-fast`` runs ``-m "not slow"``; ``make test`` (CI) runs everything. What tests share
lives in ``tests/_*.py`` (the workflow copies and runs, the session's one finished demo run
(``demo_run``, ``_demo_run.py``), fixture datasets, stores, the report's
fixture run, artifact fixtures, images, a stand-in MLLM, the repository's files).
"""

from __future__ import annotations

import os
import resource

import pytest

# before numpy or torch load, as in the `ants` command: pins their CPU code path (ants.numerics)
import ants  # noqa: F401

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


TIERS = ("unit", "integration", "e2e")

#: The longest end-to-end modules, in the order they should start: ``make test`` runs
#: ``-n N --dist loadfile --no-loadscope-reorder``, so pytest-xdist hands out files in collection
#: order, the longest first and the short ones filling in at the end. The first four need no
#: demo run before their own builds: one worker builds the session's shared demo run (for the
#: paper test) while the others build their own (reproducibility, from nothing, an installed
#: wheel), so that no worker waits on the shared run's lock while it is built.
E2E_ORDER = (
    "test_workflow_paper.py",
    "test_reproducibility.py",
    "test_workflow_from_scratch.py",
    "test_install.py",
    "test_workflow.py",
    "test_documented_commands.py",
    "test_slurm.py",
    "test_workflow_outage.py",
)


def _tier(item) -> str | None:
    return next((t for t in TIERS if t in item.path.parts[-2:-1]), None)


def _start_rank(item) -> tuple[int, int]:
    """e2e first (the longest modules of E2E_ORDER first), then the rest as collected."""
    if _tier(item) != "e2e":
        return (1, 0)
    name = item.path.name
    return (0, E2E_ORDER.index(name) if name in E2E_ORDER else len(E2E_ORDER))


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = _tier(item)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))
        if tier == "e2e":
            item.add_marker(pytest.mark.slow)
    items.sort(key=_start_rank)  # stable: each module's tests stay together, in their order


@pytest.fixture(scope="session")
def tiny_clip():
    """The tiny random-weight CLIP (64-d, seed 0) on CPU in fp32, built once per session."""
    from ants.encoders import ClipSpec, load_clip

    return load_clip(ClipSpec.tiny(seed=0), device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The session's finished reduced demo run (tests/_demo_run.py), built once even under
    pytest-xdist; never change it: take a copy with ``_demo_run.copy_demo_run(demo_run, dest)``."""
    from _demo_run import finished_demo_run

    return finished_demo_run(tmp_path_factory)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    """The tiny demo LLaVA (seed 0) built into a folder, once per test module."""
    from ants.mllm.demo import ensure_demo_model

    return ensure_demo_model(seed=0, model_dir=tmp_path_factory.mktemp("demo") / "mllm")


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    """The tiny demo Qwen2-VL (seed 0) built into a folder, once per test module."""
    from ants.mllm.demo import ensure_demo_model

    folder = tmp_path_factory.mktemp("demo") / "qwen"
    return ensure_demo_model(seed=0, model_dir=folder, architecture="qwen2vl")


@pytest.fixture
def image_files(tmp_path):
    """Six small generated images (PNG and JPEG, different sizes and content), as paths."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i, (ext, size) in enumerate([("png", (40, 40)), ("jpg", (64, 48)), ("png", (33, 57)),
                                     ("jpg", (48, 48)), ("png", (80, 32)), ("jpg", (36, 36))]):
        pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        pixels[: size[1] // 2] = (37 * i) % 256  # a distinct flat band per image
        path = tmp_path / f"img_{i}.{ext}"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


#: what tests leave for a person to read at the end of the run (pytest -q hides their prints):
#: "test artifacts" (saved files, e.g. the report's screenshot) and "test figures" (measured
#: numbers, e.g. the dry-run job counts of every config). A test records them as its item's
#: ``user_properties``, which pytest-xdist carries from the workers to the controller, so the
#: sections are the same with ``-n 2`` as without.
SUMMARY: dict[str, list[str]] = {"test artifacts": [], "test figures": []}


@pytest.fixture
def record_artifact(request):
    """``record_artifact(path)``: name a saved file in the run's final "test artifacts" section."""
    return lambda path: request.node.user_properties.append(("test artifacts", str(path)))


@pytest.fixture
def record_figure(request):
    """``record_figure(line)``: a line for the run's final "test figures" section."""
    return lambda line: request.node.user_properties.append(("test figures", str(line)))


#: fault-injection tests (marker ``faults``) by outcome: the run's "faults tried, held" line
FAULTS = {"held": 0, "broke": 0}


#: the CPU seconds each test used, its own and its children's (Snakemake, its jobs, servers:
#: every process the test waited for), for the run's "CPU time by test" section; the wall
#: times of ``--durations`` hide which tests cost the machine the most, as two or three
#: workers share its cores
CPU_BY_TEST: dict[str, float] = {}
#: the section's length
CPU_TOP = 20


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have been waited for."""
    return sum(
        u.ru_utime + u.ru_stime
        for u in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


_CPU_START = pytest.StashKey[float]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_CPU_START] = _cpu_seconds()  # before the fixtures: a fixture's build counts too


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    if call.when == "setup" and item.get_closest_marker("faults") is not None:
        item.user_properties.append(("fault", item.nodeid))
    outcome = yield
    if call.when == "teardown" and _CPU_START in item.stash:
        outcome.get_result().user_properties.append(("cpu", _cpu_seconds() - item.stash[_CPU_START]))


def pytest_runtest_logreport(report):
    is_fault = any(title == "fault" for title, _ in report.user_properties)
    if is_fault and (report.when == "call" or (report.when == "setup" and report.failed)):
        FAULTS["held" if report.passed else "broke"] += 1 if not report.skipped else 0
    if report.when == "teardown":  # the last report of an item: every property recorded by then
        for title, line in report.user_properties:
            if title in SUMMARY:
                SUMMARY[title].append(line)
            elif title == "cpu":
                CPU_BY_TEST[report.nodeid] = line


def pytest_terminal_summary(terminalreporter):
    if FAULTS["held"] + FAULTS["broke"]:
        SUMMARY["test figures"].append(
            f"fault injection (-m faults): {FAULTS['held'] + FAULTS['broke']} faults tried, "
            f"{FAULTS['held']} held, {FAULTS['broke']} broke"
        )
    for title, lines in SUMMARY.items():
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)
    if CPU_BY_TEST:
        total = sum(CPU_BY_TEST.values())
        terminalreporter.section(f"CPU time by test (the {CPU_TOP} costliest)")
        terminalreporter.write_line(
            f"{total:.0f} CPU-s in all, over {len(CPU_BY_TEST)} tests (own and waited-for children)"
        )
        for nodeid, seconds in sorted(CPU_BY_TEST.items(), key=lambda kv: -kv[1])[:CPU_TOP]:
            terminalreporter.write_line(f"{seconds:8.1f} CPU-s  {nodeid}")
