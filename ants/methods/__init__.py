"""OOD detectors, one per module, all with the same result type; the method registry.

* :mod:`ants.methods.base` -- :class:`MethodResult`, :class:`MethodSpec`, :func:`batch_slices`.
* :mod:`ants.methods.static` -- MCM and NegLabel (no test-time state; order-free).
* :mod:`ants.methods.glmcm` -- GL-MCM (global + local MCM; the local term per image from
  :mod:`ants.local_features`).
* :mod:`ants.methods.eoe` -- EOE (outlier names envisioned by a text LLM, scored like
  negative labels).
* :mod:`ants.methods.adaneg` -- AdaNeg (docs/METHOD.md section 5), batch-by-batch memory.
* :mod:`ants.methods.ants_tta` -- ANTS (docs/METHOD.md sections 6, 7 and 10), with MLLM queries;
  its switches and presets (:class:`~ants.methods.ants_switches.AntsConfig`) live in
  :mod:`ants.methods.ants_switches`.

:data:`METHODS` is the one registry: what each method needs (ID prompt, negatives, MLLM
answers, the shared static pass) and where its functions are. It is data: importing it
imports no detector and no torch, so the workflow reads it cheaply when it plans the jobs.
:func:`run_method` dispatches by name; the modules' own entry points (``run_mcm``,
``run_neglabel``, ``run_adaneg``, ``run_ants``) take the same arguments by keyword.
"""

from __future__ import annotations

from typing import Any

from ants.methods.base import MethodResult, MethodSpec, batch_slices

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "MethodResult",
    "MethodSpec",
    "batch_slices",
    "method_spec",
    "run_method",
]

#: Every detector, by its ``methods.<name>.method`` kind. Each adapter (``score_*``) and
#: static-pass setting (``*_static_scoring``) lives beside its detector.
METHODS: dict[str, MethodSpec] = {
    "mcm": MethodSpec(
        "mcm",
        id_prompt="photo",
        uses_negatives=False,
        uses_answers=False,
        runner="ants.methods.static:run_mcm",
        scorer="ants.methods.static:score_mcm",
    ),
    "neglabel": MethodSpec(
        "neglabel",
        id_prompt="nice",
        uses_negatives=True,
        uses_answers=False,
        runner="ants.methods.static:run_neglabel",
        scorer="ants.methods.static:score_neglabel",
        static_settings="ants.methods.static:neglabel_static_scoring",
    ),
    "adaneg": MethodSpec(
        "adaneg",
        id_prompt="nice",
        uses_negatives=True,
        uses_answers=False,
        runner="ants.methods.adaneg:run_adaneg",
        scorer="ants.methods.adaneg:score_adaneg",
        default_preset="paper",
    ),
    "ants": MethodSpec(
        "ants",
        id_prompt="nice",
        uses_negatives=False,
        uses_answers=True,
        runner="ants.methods.ants_tta:run_ants",
        scorer="ants.methods.ants_tta:score_ants",
        static_settings="ants.methods.ants_switches:ants_static_scoring",
        default_preset="authors_code",
    ),
    "glmcm": MethodSpec(
        "glmcm",
        id_prompt="photo_bare",
        uses_negatives=False,
        uses_answers=False,
        runner="ants.methods.glmcm:run_glmcm",
        scorer="ants.methods.glmcm:score_glmcm",
        uses_local=True,
    ),
    "eoe": MethodSpec(
        "eoe",
        id_prompt="photo_bare",
        uses_negatives=False,
        uses_answers=False,
        runner="ants.methods.eoe:run_eoe",
        scorer="ants.methods.eoe:score_eoe",
        uses_envisioned=True,
    ),
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
    * ``glmcm``: ``image_features, id_text_features, local_scores | local_features,
      temperature=1.0, lambda_local=1.0``
    * ``eoe``: ``image_features, id_text_features, envisioned_features, beta=0.25,
      temperature=1.0``
    * ``ants``: see :func:`ants.methods.ants_tta.run_ants`.
    """
    return method_spec(name).run(**kwargs)
