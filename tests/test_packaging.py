"""pyproject.toml: dependency floors against what the package really calls; what a wheel ships."""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]


def _requirement(name: str) -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [Requirement(r) for r in project["dependencies"] if Requirement(r).name == name]
    assert len(found) == 1, f"pyproject.toml lists {name} {len(found)} times"
    return found[0]


def test_numpy_floor_is_2_0_because_the_package_calls_np_trapezoid():
    """The numpy requirement admits no 1.x release.

    ``ants.metrics`` computes AUPR with ``np.trapezoid``, which numpy 2.0 added (1.x has only
    ``np.trapz``); it is the package's one numpy>=2 API (a grep of ``ants/`` for the 2.0
    additions: ``trapezoid``, ``concat``, ``unique_values``/``_counts``/``_inverse``/``_all``,
    ``isdtype``, ``permute_dims``, ``matrix_transpose``, ``vecdot``, ``bitwise_count``,
    ``np.strings``, ``cumulative_sum``, finds only it).
    """
    spec = _requirement("numpy").specifier
    assert not any(spec.contains(v) for v in ("1.26.4", "1.99"))
    assert spec.contains("2.0.0")
    uses = [
        p.relative_to(ROOT).as_posix()
        for p in sorted((ROOT / "ants").rglob("*.py"))
        if re.search(r"\bnp\.trapezoid\(", p.read_text(encoding="utf-8"))
    ]
    assert "ants/metrics.py" in uses  # the reason for the floor still holds
    # the environment the tests run in satisfies the floor (and has the API)
    assert spec.contains(Version(np.__version__).base_version)
    assert callable(np.trapezoid)


def test_transformers_floor_is_5_and_accelerate_is_listed_for_device_map():
    """transformers 4.x is not admitted and accelerate is a dependency.

    ``ants.mllm.hf`` loads with ``from_pretrained(..., dtype=..., device_map=...)`` (``dtype``
    replaced ``torch_dtype`` late in 4.x; a ``device_map`` needs ``accelerate``), and the demo
    model's Qwen2-VL config uses transformers 5's ``rope_parameters``.
    """
    import accelerate
    import transformers

    spec = _requirement("transformers").specifier
    assert not spec.contains("4.57.0") and spec.contains("5.0.0")
    assert spec.contains(Version(transformers.__version__).base_version)
    assert _requirement("accelerate").specifier.contains(
        Version(accelerate.__version__).base_version
    )
    hf = (ROOT / "ants" / "mllm" / "hf.py").read_text(encoding="utf-8")
    assert "device_map=" in hf and "dtype=_torch_dtype(" in hf  # the reasons still hold
    assert "rope_parameters" in (ROOT / "ants" / "mllm" / "demo.py").read_text(encoding="utf-8")


def test_a_built_wheel_validates_params_with_its_own_schema(tmp_path):
    """The params schema is package data: a non-editable install (a wheel, installed apart from
    this checkout) validates params.yaml; and the build prints no deprecation warning (the
    licence is an SPDX string, not a TOML table)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "ants", src / "ants", ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheel"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    assert "deprecat" not in (build.stdout + build.stderr).lower(), build.stderr[-3000:]
    (wheel,) = (tmp_path / "wheel").glob("ants-*.whl")
    assert "ants/schemas/params.schema.yaml" in zipfile.ZipFile(wheel).namelist()
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", str(wheel), "--no-deps", "--target", str(site)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(ROOT / "params.yaml", work / "params.yaml")
    code = (
        "import ants.config as c\n"
        "p = c.load_params('params.yaml', check_files=False)\n"
        "print(c.SCHEMA_PATH)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}  # not this checkout
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert Path(run.stdout.strip()).is_relative_to(site)  # the installed copy's schema
