"""The portable CPU code path (ants.numerics): what is set, when, what a user can keep."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from ants import numerics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_avx2 = pytest.mark.skipif(
    numerics.why_not_portable() is not None, reason=f"{numerics.why_not_portable()}"
)


def python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter (the pin acts at import), with ``env`` on top of ours
    minus every variable the pin sets."""
    e = {k: v for k, v in os.environ.items() if k not in numerics.portable_settings()}
    e.pop(numerics.ENV_MODE, None)
    e.update(PYTHONPATH=ROOT, **env)
    return subprocess.run(
        [sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True
    )


@needs_avx2
def test_portable_mode_sets_every_library_variable_and_names_what_it_replaced(caplog):
    env = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AVX2", "OMP_NUM_THREADS": "3"}
    with caplog.at_level(logging.WARNING, logger="ants.numerics"):
        state = numerics.pin(env)
    settings = numerics.portable_settings()
    assert state == {"mode": "portable", "settings": settings}
    assert {k: env[k] for k in settings} == settings
    assert env["OMP_NUM_THREADS"] == "3"  # thread counts are the user's
    assert settings["MKL_CBWR"] == "COMPATIBLE" and settings["ATEN_CPU_CAPABILITY"] == "avx2"
    (record,) = caplog.records
    assert "replaced ATEN_CPU_CAPABILITY=default, MKL_CBWR=AVX2 " in record.getMessage()
    assert "ANTS_CPU_NUMERICS=native keeps yours" in record.getMessage()
    # values equal to the pin are no news
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ants.numerics"):
        numerics.pin(dict(settings))
    assert caplog.records == []


def test_native_mode_leaves_the_environment_alone():
    env = {"ANTS_CPU_NUMERICS": "native", "ATEN_CPU_CAPABILITY": "default"}
    assert numerics.pin(env) == {"mode": "native"}
    assert env == {"ANTS_CPU_NUMERICS": "native", "ATEN_CPU_CAPABILITY": "default"}


def test_an_unknown_mode_is_named_and_portable_is_used(caplog):
    with caplog.at_level(logging.WARNING, logger="ants.numerics"):
        state = numerics.pin({"ANTS_CPU_NUMERICS": "fast"})
    assert "ANTS_CPU_NUMERICS='fast' is not one of ('portable', 'native')" in caplog.text
    assert state["mode"] in ("portable", "native")  # native only where the CPU cannot


def test_a_cpu_without_avx2_or_another_architecture_is_not_pinned(monkeypatch):
    monkeypatch.setattr(numerics, "_cpu_flags", lambda: {"sse4_2", "avx"})
    monkeypatch.setattr(numerics.platform, "machine", lambda: "x86_64")
    env: dict[str, str] = {}
    assert numerics.pin(env) == {"mode": "native", "not_pinned": "the CPU lacks avx2 and fma"}
    assert env == {}  # ATEN_CPU_CAPABILITY=avx2 would crash a CPU without AVX2
    monkeypatch.setattr(numerics.platform, "machine", lambda: "aarch64")
    assert numerics.pin({})["not_pinned"] == "not an x86-64 CPU (aarch64)"


def test_numpy_feature_names_follow_its_version(monkeypatch):
    monkeypatch.setattr(numerics, "_numpy_version", lambda: (2, 4))
    assert (
        numerics.portable_settings()["NPY_DISABLE_CPU_FEATURES"] == "X86_V4 AVX512_ICL AVX512_SPR"
    )
    monkeypatch.setattr(numerics, "_numpy_version", lambda: (2, 2))
    assert "AVX512_SKX" in numerics.portable_settings()["NPY_DISABLE_CPU_FEATURES"].split()


@needs_avx2
def test_importing_ants_pins_torch_and_mkl_before_they_load():
    code = (
        "import json, ants, torch; a = torch.ones(8, 8); a @ a;"
        "print(json.dumps([torch.backends.cpu.get_cpu_capability(), ants.numerics.provenance()]))"
    )
    # a machine whose torch would take another path: ants replaces the setting
    pinned = python(code, ATEN_CPU_CAPABILITY="default", MKL_VERBOSE="1")
    capability, state = json.loads(pinned.stdout.splitlines()[-1])
    assert capability == "AVX2" and state["mode"] == "portable" and "loaded_before_pin" not in state
    assert "CNR:COMPATIBLE" in pinned.stdout  # MKL's verbose line of the product
    assert "replaced ATEN_CPU_CAPABILITY=default" in pinned.stderr
    # native: the user's setting holds, MKL runs without its reproducibility mode
    native = python(
        code, ATEN_CPU_CAPABILITY="default", MKL_VERBOSE="1", ANTS_CPU_NUMERICS="native"
    )
    capability, state = json.loads(native.stdout.splitlines()[-1])
    assert (capability, state) == ("DEFAULT", {"mode": "native"})
    assert "CNR:OFF" in native.stdout and native.stderr == ""
    # imported after torch: too late to count on, and recorded so
    late = python("import torch, json, ants; print(json.dumps(ants.numerics.provenance()))")
    assert "torch" in json.loads(late.stdout)["loaded_before_pin"]


@needs_avx2
def test_the_clip_encoder_identity_records_the_code_path(tiny_clip):
    assert tiny_clip.identity()["cpu_numerics"] == numerics.provenance()
    assert numerics.provenance()["mode"] == "portable"  # conftest imports ants first
