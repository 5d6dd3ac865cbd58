"""ANTS: zero-shot OOD detection with CLIP, negative labels and test-time MLLM negatives.

Every score in this package is "higher = more in-distribution".

Importing the package pins the CPU code path of torch, MKL, oneDNN, OpenBLAS and numpy before
they load (:mod:`ants.numerics`; ``ANTS_CPU_NUMERICS=native`` turns it off), so what the
workflow versions is byte-identical on every x86-64 machine with AVX2.
"""

from ants import numerics as _numerics

__version__ = "0.1.0"

_numerics.pin()
