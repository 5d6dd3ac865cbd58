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


def report(imports: str) -> str:
    """Code that runs ``imports``, one CPU computation per library, then prints what each says
    it ran: torch's capability, numpy's OpenBLAS kernels, and the pin's provenance."""
    return (
        f"{imports}; import json, torch, numpy, threadpoolctl, ants; a = torch.ones(64, 64);"
        "a @ a; torch.nn.functional.gelu(torch.ones(1000));"
        "print(json.dumps([torch.backends.cpu.get_cpu_capability(),"
        " [i.get('architecture') for i in threadpoolctl.threadpool_info()"
        " if i['internal_api'] == 'openblas'], ants.numerics.provenance()]))"
    )


#: what another machine, or a user's shell, would make the libraries do
OTHER_PATH = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "OPENBLAS_CORETYPE": "Sandybridge",
    "MKL_VERBOSE": "1",
    "ONEDNN_VERBOSE": "1",
}


@needs_avx2
def test_importing_ants_first_pins_torch_mkl_onednn_and_openblas():
    pytest.importorskip("threadpoolctl")
    pinned = python(report("import ants"), **OTHER_PATH)
    capability, openblas, state = json.loads(pinned.stdout.splitlines()[-1])
    assert capability == "AVX2" and state["mode"] == "portable" and "loaded_before_pin" not in state
    assert "CNR:COMPATIBLE" in pinned.stdout  # MKL's verbose line of the product
    assert "isa:Intel AVX2" in pinned.stdout and "jit:avx2" in pinned.stdout  # oneDNN's GELU
    assert openblas == ["Haswell"]  # numpy's OpenBLAS
    assert (
        "replaced ATEN_CPU_CAPABILITY=default, ONEDNN_MAX_CPU_ISA=SSE41, "
        "OPENBLAS_CORETYPE=Sandybridge (ANTS_CPU_NUMERICS=native keeps yours)" in pinned.stderr
    )


@needs_avx2
def test_native_mode_honours_the_users_settings_in_every_library():
    pytest.importorskip("threadpoolctl")
    native = python(report("import ants"), ANTS_CPU_NUMERICS="native", **OTHER_PATH)
    capability, openblas, state = json.loads(native.stdout.splitlines()[-1])
    assert (capability, openblas, state) == ("DEFAULT", ["Sandybridge"], {"mode": "native"})
    assert "CNR:OFF" in native.stdout  # MKL without its reproducibility mode
    assert "isa:Intel SSE4.1" in native.stdout and "jit:sse41" in native.stdout
    assert "replaced" not in native.stderr


@needs_avx2
def test_numpy_knows_every_feature_name_it_is_asked_to_disable():
    # numpy warns (ImportWarning) and ignores a name it does not dispatch, e.g. AVX512_SKX since
    # numpy 2.4: the pin would then leave AVX-512 loops on
    python("import ants, numpy", PYTHONWARNINGS="error::ImportWarning")


@needs_avx2
def test_ants_imported_after_numpy_or_torch_is_recorded_and_pins_only_what_has_not_started():
    """numpy fixes its kernels (and OpenBLAS's) when it loads; torch its capability, and MKL its
    branch, at their first CPU computation: the pin after them cannot be counted on, and the
    files say so (``loaded_before_pin``)."""
    pytest.importorskip("threadpoolctl")
    imported = python(report("import torch"), **OTHER_PATH)  # `import torch` imports numpy
    capability, openblas, state = json.loads(imported.stdout.splitlines()[-1])
    assert state["loaded_before_pin"] == ["numpy", "torch"] and state["mode"] == "portable"
    assert openblas == ["Sandybridge"]  # too late for numpy's OpenBLAS
    assert capability == "AVX2" and "CNR:COMPATIBLE" in imported.stdout  # torch had not computed
    computed = python(report("import torch; torch.ones(8, 8) @ torch.ones(8, 8)"), **OTHER_PATH)
    capability, _, state = json.loads(computed.stdout.splitlines()[-1])
    assert capability == "DEFAULT" and "CNR:OFF" in computed.stdout  # too late for torch and MKL
    assert state["loaded_before_pin"] == ["numpy", "torch"]
    numpy_only = python("import numpy, json, ants; print(json.dumps(ants.numerics.provenance()))")
    assert json.loads(numpy_only.stdout)["loaded_before_pin"] == ["numpy"]


@needs_avx2
def test_the_pin_runs_once_per_process_and_hands_out_copies():
    # conftest imported ants first: this process is pinned, and its environment says so
    state = numerics.provenance()
    assert state == {"mode": "portable", "settings": numerics.portable_settings()}
    assert {k: os.environ[k] for k in numerics.portable_settings()} == state["settings"]
    state["settings"]["MKL_CBWR"] = "AUTO"
    assert numerics.pin() == numerics.provenance() != state


@needs_avx2
def test_the_mode_ignores_case_and_spaces_and_defaults_to_portable():
    assert numerics.pin({"ANTS_CPU_NUMERICS": " Native "}) == {"mode": "native"}
    assert numerics.pin({"ANTS_CPU_NUMERICS": ""})["mode"] == "portable"
    assert numerics.pin({})["mode"] == "portable"


def test_only_cpu_libraries_are_pinned_never_a_gpu_setting():
    """A CUDA run's kernels are the GPU libraries' own: the pin sets CPU libraries' variables
    only, leaves CUDA's and torch's GPU switches alone."""
    gpu = {
        "CUDA_VISIBLE_DEVICES": "1",
        "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        "NVIDIA_TF32_OVERRIDE": "0",
        "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    }
    env = dict(gpu)
    numerics.pin(env)
    assert {k: env[k] for k in gpu} == gpu
    assert all(
        k.startswith(("ATEN_CPU_", "MKL_", "ONEDNN_", "OPENBLAS_", "NPY_"))
        for k in numerics.portable_settings()
    )


@needs_avx2
def test_torch_gpu_switches_are_the_same_pinned_and_native():
    code = (
        "import json, ants, torch; b = torch.backends;"
        "print(json.dumps([torch.cuda.is_available(), b.cuda.matmul.allow_tf32,"
        " b.cudnn.allow_tf32, b.cudnn.deterministic, b.cudnn.benchmark,"
        " torch.get_float32_matmul_precision(), torch.are_deterministic_algorithms_enabled()]))"
    )
    pinned = python(code).stdout.splitlines()[-1]
    assert pinned == python(code, ANTS_CPU_NUMERICS="native").stdout.splitlines()[-1]


@needs_avx2
def test_the_clip_encoder_identity_records_the_code_path(tiny_clip):
    assert tiny_clip.identity()["cpu_numerics"] == numerics.provenance()
    assert numerics.provenance()["mode"] == "portable"  # conftest imports ants first
