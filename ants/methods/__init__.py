"""OOD detectors, one per module, all with the same result type.

* :mod:`ants.methods.static` -- MCM and NegLabel (no test-time state; order-free).
* :mod:`ants.methods.adaneg` -- AdaNeg (METHOD.md section 5), batch-by-batch memory.
* :mod:`ants.methods.ants_tta` -- ANTS (METHOD.md sections 6, 7 and 10), with MLLM queries.

Conventions shared by every method:

* Inputs are precomputed, L2-normalised CLIP features; image features are given in STREAM
  ORDER (see :mod:`ants.streams`) and test-time methods cut them into batches of
  ``batch_size`` numbered from 1.
* Every method emits one score per sample, in the order of the input, "higher = more
  in-distribution", plus an ID-class prediction per sample.

:func:`run_method` dispatches by name; the modules' own entry points (``run_mcm``,
``run_neglabel``, ``run_adaneg``, ``run_ants``) take the same arguments by keyword.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["METHOD_NAMES", "MethodResult", "as_features", "batch_slices", "run_method"]

METHOD_NAMES = ("mcm", "neglabel", "adaneg", "ants")


@dataclass
class MethodResult:
    """Per-sample output of a detector, in the order of its input features.

    * ``scores``: ``(n,)`` float32, higher = more in-distribution (the method's main score);
    * ``predictions``: ``(n,)`` int64 ID-class indices;
    * ``variants``: other named per-sample scores the same run produced (e.g. ANTS's
      ``ada`` / ``far_only`` / ``near_only`` and the static ``s_nl``), all ``(n,)`` float32;
    * ``trace``: method-specific record of the test-time state (None for static methods).
    """

    method: str
    scores: np.ndarray
    predictions: np.ndarray
    variants: dict[str, np.ndarray] = field(default_factory=dict)
    trace: Any = None


def as_features(
    x: Any, name: str, *, dim: int | None = None, allow_empty: bool = False
) -> torch.Tensor:
    """A float32 ``(n, d)`` tensor of ``x`` with clear errors for bad shapes and values."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array (rows = items, columns = features), got shape {tuple(t.shape)}"
        )
    if not t.is_floating_point():
        raise TypeError(f"{name} must hold floating-point features, got dtype {t.dtype}")
    if t.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty: at least one row is needed")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(
            f"feature dimension mismatch: {name} has d={t.shape[1]}, expected d={dim} "
            "(were all features encoded by the same CLIP model?)"
        )
    t = t.detach().to(device="cpu", dtype=torch.float32).contiguous()
    if t.numel() and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def batch_slices(n: int, batch_size: int) -> Iterator[tuple[int, slice]]:
    """``(batch number from 1, slice)`` over ``n`` stream positions."""
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    for b, start in enumerate(range(0, n, int(batch_size)), start=1):
        yield b, slice(start, min(n, start + int(batch_size)))


def run_method(name: str, **kwargs: Any) -> MethodResult:
    """Run the detector ``name`` (one of :data:`METHOD_NAMES`) with its keyword arguments.

    * ``mcm``: ``image_features, id_text_features, temperature=1.0``
    * ``neglabel``: ``image_features, id_text_features, negative_features, n_groups=100 |
      group_size=..., tau=0.01``
    * ``adaneg``: ``image_features, id_text_features, negative_features, batch_size=256,
      config=None``
    * ``ants``: see :func:`ants.methods.ants_tta.run_ants`.
    """
    if name == "mcm":
        from ants.methods.static import run_mcm

        return run_mcm(**kwargs)
    if name == "neglabel":
        from ants.methods.static import run_neglabel

        return run_neglabel(**kwargs)
    if name == "adaneg":
        from ants.methods.adaneg import run_adaneg

        return run_adaneg(**kwargs)
    if name == "ants":
        from ants.methods.ants_tta import run_ants

        return run_ants(**kwargs)
    raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHOD_NAMES)}")
