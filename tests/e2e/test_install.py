"""The package as a user with their own torch installs it: ``pip install ".[workflow]"``, not
editable and without the ``dev`` extra (issue 15, item 7).

A fresh virtual environment gets:

* the ``ants`` wheel built from this tree, installed non-editable (so the package can only use
  what the wheel holds: a file read from the source checkout beside it is not there);
* exactly the distributions that ``ants[workflow]`` requires, followed transitively through
  their own requirements (markers and extras evaluated): linked from this test's environment,
  so nothing is downloaded, and nothing of the ``dev`` extra (pytest, scikit-learn, ...)
  comes along unless a runtime requirement needs it; their console scripts (``snakemake``).

Then ``ants config check`` and the demo workflow up to the report run there, in a folder that
holds the workflow but not the package's sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from _repo import repo_files
from _workflow import test_params

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: what a workflow run needs beside the installed package (the package's sources are left out)
WORKFLOW_FILES = ("Snakefile", "params.yaml", "workflow", "profiles", "configs")

pytestmark = pytest.mark.slow


def workflow_requirements() -> dict[str, metadata.Distribution]:
    """Every installed distribution that ``ants[workflow]`` needs (pyproject.toml's
    ``dependencies`` and the ``workflow`` extra, transitively), by canonical name."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [
        Requirement(r)
        for r in project["dependencies"] + project["optional-dependencies"]["workflow"]
    ]
    found: dict[str, metadata.Distribution] = {}
    done: set[tuple[str, frozenset]] = set()
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in done:
            continue
        done.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{req.name} (needed by ants[workflow]) is not installed in {sys.prefix}")
        found[key[0]] = dist
        for text in dist.requires or []:
            sub = Requirement(text)
            extras = {""} | set(req.extras)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return found


def _top_level(dist: metadata.Distribution) -> set[str]:
    """The names a distribution puts directly into site-packages (packages, modules, its
    .dist-info), from its RECORD."""
    assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD"
    return {p.parts[0] for p in dist.files if p.parts[0] not in ("..", "__pycache__")}


def _run(
    args, cwd: Path, env: dict | None = None, timeout: int = 1800
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
        f"{proc.stderr[-4000:]}"
    )
    return proc


def venv_env(venv: Path) -> dict:
    """The environment of a user of ``venv``: its bin first, nothing of this test's environment
    (its venv's bin, a PYTHONPATH) that could make the checkout's package importable."""
    e = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    path = [
        p for p in e.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != BIN.resolve()
    ]
    e.update(
        PATH=os.pathsep.join([str(venv / "bin"), *path]),
        VIRTUAL_ENV=str(venv),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        DVC_NO_ANALYTICS="1",
        PYTHONHASHSEED="0",
    )
    return e


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("install")
    # the wheel, built from a copy of this tree (every tracked and not ignored file)
    src = base / "src"
    for path in repo_files():
        (src / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, src / path.relative_to(ROOT))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            base / "dist",
            src,
        ],
        base,
    )
    (wheel,) = (base / "dist").glob("ants-*.whl")
    # a fresh environment holding exactly the requirements of ants[workflow]
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], base)
    (site,) = (venv / "lib").glob("python3*/site-packages")
    for dist in workflow_requirements().values():
        for name in _top_level(dist):
            if not (site / name).exists():
                (site / name).symlink_to(Path(dist.locate_file(name)))
        for ep in dist.entry_points:
            if ep.group == "console_scripts":
                module, _, attr = ep.value.partition(":")
                script = venv / "bin" / ep.name
                script.write_text(
                    f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {module} import {attr.split('.')[0]}\n"
                    f"sys.exit({attr}())\n"
                )
                script.chmod(0o755)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            venv / "bin" / "python",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            wheel,
        ],
        base,
    )
    return venv


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("user") / "project"
    for path in repo_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] in WORKFLOW_FILES:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / rel)
    assert not (dest / "ants").exists()
    return dest


def test_the_environment_is_the_workflow_extra_without_dev(venv, workflow_copy):
    env = venv_env(venv)
    where = _run(
        [venv / "bin" / "python", "-c", "import ants, snakemake; print(ants.__file__)"],
        workflow_copy,
        env,
    )
    assert where.stdout.strip().startswith(
        str(venv / "lib")
    )  # the installed wheel, not the checkout
    for module in ("sklearn", "pytest", "ruff"):
        proc = subprocess.run(
            [venv / "bin" / "python", "-c", f"import {module}"],
            cwd=workflow_copy,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, module


def test_config_check_runs_from_the_installed_package(venv, workflow_copy):
    out = _run(
        [venv / "bin" / "ants", "config", "check", "params.yaml"], workflow_copy, venv_env(venv)
    )
    assert "params.yaml: valid" in out.stdout


def test_the_demo_workflow_builds_the_report_from_the_installed_package(venv, workflow_copy):
    # every rule and every method runs from the wheel; one seed and one OOD set are enough for
    # that (the other OOD set and seed run the same code on other files)
    params = test_params()
    params["run"]["seeds"] = [0]
    params["benchmarks"]["demo"]["ood"] = {"far": ["demo_far"]}
    (workflow_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run([venv / "bin" / "snakemake", "--cores", "2", "all"], workflow_copy, venv_env(venv))
    html = (workflow_copy / "reports" / "index.html").read_text()
    assert 'id="demo-banner"' in html and (workflow_copy / "results" / "metrics.json").is_file()
