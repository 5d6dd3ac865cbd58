"""Portable CPU numerics: one float code path for torch, MKL, oneDNN, OpenBLAS and numpy.

Why
---
The float32 kernels of the CPU libraries choose their code path by the processor they run on:
torch's own vectorised loops (reductions, softmax, layer norm) use 8 floats a vector on an AVX2
CPU and 16 on an AVX-512 one; MKL (torch's matrix products) and OpenBLAS (numpy's) pick a
kernel per CPU model and vendor; oneDNN (convolutions, GELU) compiles its kernels for the ISA
it finds; numpy dispatches its own SIMD loops. Each path sums in another order, so the same
run on another machine of the same kind writes other last bits into the CLIP features; the
rankings of near-tied scores then flip, metrics move in their last digits, and every hash in
``dvc.lock`` downstream changes.

Rounding what is written would not help: a metric is an exact function of the scores'
ranking (AUROC counts pairs), so a near-tie that flips or becomes a tie moves it by a step or
half a step of 100 / (n_ID x n_OOD) percent, at any printed precision (the demo's ``59.6883``
-> ``59.6892`` is half a step of its 200 ID x 100 near-OOD images, averaged over three seeds). With the same bits in the scores the metrics are exact, and
the ``%.6g`` of the metrics files is reproducible as it is.

What is pinned
--------------
When the package is imported (:func:`pin`, called by ``ants/__init__.py``; the ``ants``
command imports nothing before it, so every workflow job is pinned before numpy or torch
loads), it sets, on an x86-64 CPU with AVX2 and FMA (:data:`PORTABLE`):

============================  ==================  ============================================
variable                      value               what it fixes
============================  ==================  ============================================
``ATEN_CPU_CAPABILITY``       ``avx2``            torch's own CPU kernels: 8 floats a vector
``MKL_CBWR``                  ``COMPATIBLE``      MKL's conditional numerical reproducibility,
                                                  the branch Intel documents as giving the same
                                                  results on Intel and non-Intel CPUs
``ONEDNN_MAX_CPU_ISA``        ``AVX2``            oneDNN's JIT kernels (convolution, GELU)
``OPENBLAS_CORETYPE``         ``Haswell``         numpy's OpenBLAS kernels (AVX2)
``NPY_DISABLE_CPU_FEATURES``  the AVX-512 groups  numpy's own SIMD loops at AVX2 at most
============================  ==================  ============================================

Why ``COMPATIBLE`` and not MKL's faster ``AVX2`` branch: Intel documents ``AVX2`` as
reproducible across Intel CPUs only; on other CPUs MKL runs its ``AUTO`` branch instead
(``MKL_VERBOSE=1`` shows ``CNR:AUTO`` on an AMD EPYC), so an AMD and an Intel machine could
still differ. ``COMPATIBLE`` is the branch documented for Intel and non-Intel CPUs alike.

Thread counts are left alone (speed). MKL documents ``COMPATIBLE`` as reproducible for a fixed
thread count; with these settings the CLIP features and the static pass measured the same
under 1, 2 and 8 threads, and ``tests/test_reproducibility.py`` runs the demo DAG from scratch
under 2 threads and under 1 thread with every library asked for another code path, and finds
every DVC-tracked file byte-identical. The one thread-dependent product found (numpy's
OpenBLAS product in NegMining's statistic) now runs through torch. What could not be run here:
the AVX-512 kernels themselves (the development machine has none); the pin keeps every library
off them.

Only CPU code paths change: a GPU's kernels are untouched, so a CUDA run's features are what
they were (and, as before, not bit-identical across GPU models); the CPU stages of a GPU run
(static pass, scores) are pinned like any other. The cost is MKL's SSE2 branch in float32
matrix products (``benchmarks/bench_numerics.py``); an AVX-512 CPU also gives up its wider
vectors.

Modes and opting out
--------------------
``ANTS_CPU_NUMERICS`` (read once, at import):

* ``portable`` (default): the settings above, replacing any value these variables had (a
  differing value is named in one warning line: a stray ``ATEN_CPU_CAPABILITY`` in a shell
  would otherwise break the byte identity silently);
* ``native``: nothing is set; every library picks the fastest path for this CPU and honours
  whatever you set yourself. Results are then reproducible on this machine only.

What was in effect is recorded where it decides stored bytes (:func:`provenance`: the CLIP
encoder's identity, hence the embedding, text and negatives files; the static and score files)
and, with this machine's details, in the report (:func:`describe`).
Pinning after numpy or torch were imported (a notebook that imports them first) cannot be
counted on: numpy (and its OpenBLAS) read their settings when numpy loads, torch and MKL at their
first CPU computation, so the pin reaches only what has not started yet. :func:`provenance` then
names the libraries loaded before it under ``loaded_before_pin`` (and the files record it); the
settings are still put into the environment, for the processes this one starts.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
from importlib import metadata

__all__ = [
    "ENV_MODE",
    "MODES",
    "PORTABLE",
    "describe",
    "pin",
    "portable_settings",
    "provenance",
    "why_not_portable",
]

log = logging.getLogger(__name__)

#: the variable that chooses the mode
ENV_MODE = "ANTS_CPU_NUMERICS"
MODES = ("portable", "native")

#: the portable code path (numpy's entry depends on its version: see :func:`portable_settings`)
PORTABLE = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
}

# numpy's dispatch targets above AVX2: grouped as X86_V4 (+ two extensions) since numpy 2.4,
# named one by one before (a name numpy does not dispatch is ignored with an ImportWarning)
_NUMPY_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"
_NUMPY_AVX512_OLD = (
    "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
)

#: libraries whose code path is fixed when they load (or first compute)
_LIBRARIES = ("numpy", "torch")

_state: dict | None = None


def _numpy_version() -> tuple[int, int]:
    try:
        parts = metadata.version("numpy").split(".")
        return int(parts[0]), int(parts[1])
    except (metadata.PackageNotFoundError, ValueError, IndexError):
        return (0, 0)


def portable_settings() -> dict[str, str]:
    """The variables :func:`pin` sets in ``portable`` mode, with their values."""
    numpy_names = _NUMPY_AVX512 if _numpy_version() >= (2, 4) else _NUMPY_AVX512_OLD
    return {**PORTABLE, "NPY_DISABLE_CPU_FEATURES": numpy_names}


def _cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``); empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def why_not_portable() -> str | None:
    """None when the portable path runs on this CPU, else why not."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"not an x86-64 CPU ({platform.machine()})"
    missing = {"avx2", "fma"} - _cpu_flags()
    if missing:
        return f"the CPU lacks {' and '.join(sorted(missing))}"
    return None


def pin(environ=None) -> dict:
    """Set the portable code path (see the module docstring) once per process; returns
    :func:`provenance`. ``environ`` (default ``os.environ``) is for tests."""
    global _state
    env = os.environ if environ is None else environ
    if environ is None and _state is not None:
        return provenance()
    mode = env.get(ENV_MODE, "portable").strip().lower() or "portable"
    state: dict = {"mode": mode}
    if mode not in MODES:
        log.warning("%s=%r is not one of %s; using 'portable'", ENV_MODE, env.get(ENV_MODE), MODES)
        state["mode"] = mode = "portable"
    if mode == "portable":
        why_not = why_not_portable()
        if why_not:
            state["mode"] = "native"
            state["not_pinned"] = why_not
        else:
            settings = portable_settings()
            replaced = {k: env[k] for k, v in settings.items() if env.get(k, v) != v}
            if replaced:
                log.warning(
                    "ants pins the CPU code path for reproducible results and replaced %s "
                    "(%s=native keeps yours)",
                    ", ".join(f"{k}={v}" for k, v in sorted(replaced.items())),
                    ENV_MODE,
                )
            env.update(settings)
            state["settings"] = settings
            late = [name for name in _LIBRARIES if name in sys.modules]
            if late and environ is None:  # (another environ is a test's: no library reads it)
                state["loaded_before_pin"] = late
    if environ is None:
        _state = state
    return dict(state)


def provenance() -> dict:
    """What is in effect, identical on every machine that runs the same mode: ``mode``
    (``portable`` or ``native``), the pinned ``settings``, and ``loaded_before_pin`` or
    ``not_pinned`` when they apply. Stored where the CPU's numerics decide the bytes."""
    state = _state if _state is not None else pin()
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in state.items()}


def describe() -> dict:
    """:func:`provenance` plus this machine's details (run-dependent: for the report only):
    CPU model, torch's CPU capability and thread count, the MKL reproducibility branch."""
    out = provenance()
    out["cpu"] = _cpu_model()
    try:
        import torch

        out["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        out["torch_threads"] = torch.get_num_threads()
    except Exception:  # noqa: BLE001 - a report detail, never a failure
        pass
    return out
