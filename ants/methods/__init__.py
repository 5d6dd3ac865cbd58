"""OOD detectors, one per module, all with the same result type.

* :mod:`ants.methods.static` -- MCM and NegLabel (no test-time state; order-free).
* :mod:`ants.methods.adaneg` -- AdaNeg (docs/METHOD.md section 5), batch-by-batch memory.
* :mod:`ants.methods.ants_tta` -- ANTS (docs/METHOD.md sections 6, 7 and 10), with MLLM queries.

Conventions shared by every method:

* Inputs are precomputed, L2-normalised CLIP features; image features are given in STREAM
  ORDER (see :mod:`ants.streams`) and test-time methods cut them into batches of
  ``batch_size`` numbered from 1.
* Every method emits one score per sample, in the order of the input, "higher = more
  in-distribution", plus an ID-class prediction per sample.

:data:`METHODS` is the one registry: what each method needs (ID prompt, negatives, MLLM
answers, the shared static pass) and how the workflow scores a stream with it;
:func:`run_method` dispatches by name; the modules' own entry points (``run_mcm``,
``run_neglabel``, ``run_adaneg``, ``run_ants``) take the same arguments by keyword.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ants.scores import as_features  # noqa: F401  (the one feature validator, re-exported)

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "MethodResult",
    "MethodSpec",
    "as_features",
    "batch_slices",
    "method_spec",
    "run_method",
]


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


# --------------------------------------------------------------------------------------------
# the method registry


@dataclass(frozen=True)
class MethodSpec:
    """What one detector needs and how the workflow runs it.

    * ``id_prompt``: which ID text features it scores against (``photo`` = "a photo of a {}.",
      ``nice`` = "The nice {}.", :data:`ants.artifacts.ID_PROMPTS`);
    * ``uses_negatives``: scores against the mined negative labels;
    * ``uses_answers``: asks the MLLM (plan -> answer -> replay; :mod:`ants.replay`);
    * ``static_scoring(section)``: the settings of the shared per-image static pass
      (``{"tau", "n_groups" | "group_size", "seed"}``) it reads, from its ``methods.<name>``
      params section; None when it computes everything itself;
    * ``score(section, inputs)``: run it on one stream; ``inputs`` gives lazily, in stream
      order, ``features``, ``id_text(prompt)``, ``negatives``, ``static``, ``items``,
      ``sha256``, ``class_names``, ``answers``, ``encode_text`` and ``batch_size``.
    """

    name: str
    id_prompt: str
    uses_negatives: bool
    uses_answers: bool
    static_scoring: Callable[[Mapping[str, Any]], dict | None]
    score: Callable[[Mapping[str, Any], Any], MethodResult]
    run: Callable[..., MethodResult]


def _run_mcm(**kw):
    from ants.methods.static import run_mcm

    return run_mcm(**kw)


def _run_neglabel(**kw):
    from ants.methods.static import run_neglabel

    return run_neglabel(**kw)


def _run_adaneg(**kw):
    from ants.methods.adaneg import run_adaneg

    return run_adaneg(**kw)


def _run_ants(**kw):
    from ants.methods.ants_tta import run_ants

    return run_ants(**kw)


def _neglabel_static(section: Mapping[str, Any]) -> dict:
    return {"tau": float(section["tau"]), "n_groups": int(section["n_groups"]), "seed": 0}


def _ants_static(section: Mapping[str, Any]) -> dict:
    from ants.methods.ants_tta import ants_config

    cfg = ants_config(section["config"])
    return {
        "tau": float(cfg.tau),
        "group_size": int(cfg.group_size),
        "seed": int(cfg.grouping_seed),
    }


def _score_mcm(section, inputs) -> MethodResult:
    idt, _ = inputs.id_text("photo")
    return _run_mcm(
        image_features=inputs.features,
        id_text_features=idt,
        temperature=float(section["temperature"]),
    )


def _score_neglabel(section, inputs) -> MethodResult:
    static = inputs.static  # the grouped score of each image, computed once per dataset
    return MethodResult(
        method="neglabel",
        scores=np.asarray(static.scores, np.float32),
        predictions=np.asarray(static.predictions, np.int64),
    )


def _score_adaneg(section, inputs) -> MethodResult:
    idt, _ = inputs.id_text("nice")
    return _run_adaneg(
        image_features=inputs.features,
        id_text_features=idt,
        negative_features=inputs.negatives,
        batch_size=inputs.batch_size,
        config=dict(section["config"]),
        progress=inputs.progress,
    )


def _score_ants(section, inputs) -> MethodResult:
    idt, names = inputs.id_text("nice")
    return _run_ants(
        image_features=inputs.features,
        items=inputs.items,
        id_text_features=idt,
        negative_features=None,
        class_names=names,
        encode_text=inputs.encode_text,
        answerer=inputs.answerer,
        config={**dict(section["config"]), "in_score": section["in_score"]},
        batch_size=inputs.batch_size,
        item_sha256=inputs.sha256,
        static=inputs.static,
        progress=inputs.progress,
    )


#: Every detector, by its ``methods.<name>.method`` kind.
METHODS: dict[str, MethodSpec] = {
    "mcm": MethodSpec("mcm", "photo", False, False, lambda section: None, _score_mcm, _run_mcm),
    "neglabel": MethodSpec(
        "neglabel", "nice", True, False, _neglabel_static, _score_neglabel, _run_neglabel
    ),
    "adaneg": MethodSpec(
        "adaneg", "nice", True, False, lambda section: None, _score_adaneg, _run_adaneg
    ),
    "ants": MethodSpec("ants", "nice", False, True, _ants_static, _score_ants, _run_ants),
}
METHOD_NAMES = tuple(METHODS)


def method_spec(name: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``name``; an unknown name lists the valid ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown method {name!r}; valid methods: {', '.join(METHOD_NAMES)}"
        ) from None


def run_method(name: str, **kwargs: Any) -> MethodResult:
    """Run the detector ``name`` (one of :data:`METHOD_NAMES`) with its keyword arguments.

    * ``mcm``: ``image_features, id_text_features, temperature=1.0``
    * ``neglabel``: ``image_features, id_text_features, negative_features, n_groups=100 |
      group_size=..., tau=0.01``
    * ``adaneg``: ``image_features, id_text_features, negative_features, batch_size=256,
      config=None``
    * ``ants``: see :func:`ants.methods.ants_tta.run_ants`.
    """
    return method_spec(name).run(**kwargs)
