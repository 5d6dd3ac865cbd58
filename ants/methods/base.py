"""What every detector shares: the result type, the batches of a stream, the registry's type.

Nothing here imports torch: the method registry (:mod:`ants.methods`) is built from these
types and read when the workflow is planned (which static pass a method reads, whether it
asks the MLLM), long before any detector runs.

Conventions shared by every method:

* Inputs are precomputed, L2-normalised CLIP features; image features are given in STREAM
  ORDER (see :mod:`ants.streams`) and test-time methods cut them into batches of
  ``batch_size`` numbered from 1 (:func:`batch_slices`).
* Every method emits one score per sample, in the order of the input, "higher = more
  in-distribution", plus an ID-class prediction per sample (:class:`MethodResult`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MethodResult", "MethodSpec", "batch_slices"]


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


def _resolve(target: str) -> Callable[..., Any]:
    """The function ``module:name`` names, its module imported now."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class MethodSpec:
    """What one detector needs and how the workflow runs it.

    * ``id_prompt``: which ID text features it scores against (``photo`` = "a photo of a {}.",
      ``nice`` = "The nice {}.", :data:`ants.artifacts.ID_PROMPTS`);
    * ``uses_negatives``: scores against the mined negative labels;
    * ``uses_answers``: asks the MLLM (plan -> answer -> replay; :mod:`ants.replay`);
    * ``uses_local``: reads GL-MCM's per-image local term (:mod:`ants.local_features`);
    * ``uses_envisioned``: reads the text features of labels an LLM envisioned from the ID
      label set (EOE, :mod:`ants.methods.eoe`);
    * ``runner``, ``scorer``, ``static_settings``: the functions below, as ``"module:name"``
      (imported when called, so reading the registry imports no detector and no torch);
    * ``default_preset``: the preset of a ``config`` that names none (detectors with presets:
      AdaNeg, ANTS; their config functions read it here).

    Its methods:

    * :meth:`run` (``**kwargs``): the detector's own entry point (e.g. ``run_mcm``);
    * :meth:`score` (``section, inputs``): run it on one stream; ``inputs`` gives lazily, in
      stream order, ``features``, ``id_text(prompt)``, ``negatives``, ``static``, ``items``,
      ``sha256``, ``answerer``, ``encode_text``, ``batch_size`` and ``progress``
      (:class:`ants.stages._StreamInputs`);
    * :meth:`static_scoring` (``section``): the settings of the shared per-image static pass
      (``{"tau", "n_groups" | "group_size", "seed"}``) it reads, from its ``methods.<name>``
      params section; None when it computes everything itself.
    """

    name: str
    id_prompt: str
    uses_negatives: bool
    uses_answers: bool
    runner: str
    scorer: str
    static_settings: str | None = None
    uses_local: bool = False
    uses_envisioned: bool = False
    default_preset: str | None = None

    def run(self, **kwargs: Any) -> MethodResult:
        return _resolve(self.runner)(**kwargs)

    def score(self, section: Mapping[str, Any], inputs: Any) -> MethodResult:
        return _resolve(self.scorer)(section, inputs)

    def static_scoring(self, section: Mapping[str, Any]) -> dict | None:
        if self.static_settings is None:
            return None
        return _resolve(self.static_settings)(section)
