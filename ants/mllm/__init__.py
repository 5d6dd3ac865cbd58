"""Multimodal LLM answers for ANTS: backends, prompts, parsing, the answer cache and the log.

The ``mllm`` config section picks one backend; nothing else in the package knows which::

    mllm:
      backend: demo            # demo | transformers | openai
      family: llava            # prompts and generation settings (ants.mllm.prompts)
      prompts: {}              # optional template overrides per kind (ens / vsnl)
      generation: {}           # optional setting overrides per kind
      batch_size: 16           # queries per generate() call
      # backend settings, e.g. for transformers: model, revision, device, dtype, processor_kwargs

How answers are judged is given to :func:`build_answerer` by the caller, not read from this
mapping: ``max_failed_fraction`` (default 0.0: any failed query is an error), ``max_negative_chars``
(``"lenient"`` style only, default 200: a longer parsed negative is dropped; the ``"authors"``
style has no limit and refuses one) and ``parse_style`` (``"lenient"`` /
``"authors"``, following the ANTS preset; a log can also be re-parsed at replay with
:func:`ants.answers_log.answer_map`). ``max_answer_chars`` only shortens listings
(:func:`ants.mllm.answering.shorten`).

:func:`build_backend` builds the backend, :func:`build_answerer` the cached answerer on top.
Heavy libraries (torch, transformers) are imported only when a backend needing them is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ants.mllm.base import Answer, Answerer, AnswerFailureError, Backend, BackendError, Query
from ants.mllm.parsing import BY_STYLE

ANSWERING_KEYS = ("backend", "family", "prompts", "generation", "batch_size")
#: Each backend's own settings (``mllm.backends.<name>`` in params; beside the answering keys
#: in the flat mapping :func:`build_backend` takes). The config check and the backends use these.
BACKEND_SETTINGS: dict[str, tuple[str, ...]] = {
    "demo": ("seed", "model_dir", "device", "architecture", "dtype"),
    "transformers": ("model", "revision", "model_id", "device", "dtype", "processor_kwargs"),
    "openai": (
        "base_url",
        "model",
        "api_key_env",
        "revision",
        "timeout_s",
        "max_retries",
        "backoff_s",
        "max_backoff_s",
        "max_wait_s",
        "concurrency",
        "extra_body",
    ),
}
#: The settings a backend cannot do without.
BACKEND_REQUIRED_SETTINGS: dict[str, tuple[str, ...]] = {
    "demo": (),
    "transformers": ("model",),
    "openai": ("base_url", "model"),
}
BACKENDS = tuple(BACKEND_SETTINGS)

__all__ = [
    "ANSWERING_KEYS",
    "BACKENDS",
    "BACKEND_REQUIRED_SETTINGS",
    "BACKEND_SETTINGS",
    "Answer",
    "AnswerFailureError",
    "Answerer",
    "Backend",
    "BackendError",
    "Query",
    "build_answerer",
    "build_backend",
]


def _backend_module(name: str):
    if name == "demo":
        from ants.mllm import demo as module
    elif name == "transformers":
        from ants.mllm import hf as module
    elif name == "openai":
        from ants.mllm import openai_http as module
    else:
        raise ValueError(
            f"mllm.backend: unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}"
        )
    return module


def build_backend(config: Mapping) -> Backend:
    """The backend named by ``config["backend"]``, built from the rest of ``config``.

    Unknown keys are an error (naming the key and the valid ones), so a typo never silently
    falls back to a default.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"mllm: expected a mapping, got {type(config).__name__}")
    if "backend" not in config:
        raise ValueError(f"mllm.backend: required; valid backends: {', '.join(BACKENDS)}")
    name = config["backend"]
    module = _backend_module(name)
    valid = BACKEND_SETTINGS[name] + ANSWERING_KEYS
    bad = [k for k in config if k not in valid]
    if bad:
        raise ValueError(
            f"mllm.{bad[0]}: unknown setting for backend {name!r}; valid settings: {', '.join(sorted(valid))}"
        )
    return module.from_config(config)


def build_answerer(
    config: Mapping,
    cache_path: str | os.PathLike | None = None,
    progress: bool = False,
    *,
    parse_style: str = "lenient",
    max_failed_fraction: float = 0.0,
    max_negative_chars: int | str | None = BY_STYLE,
):
    """A :class:`~ants.mllm.answering.CachedAnswerer` over :func:`build_backend` ``(config)``.

    ``cache_path``: the SQLite answer cache (None: no cache). For ``backend: demo`` the prompt
    family defaults to the demo's ``architecture``. ``parse_style``, ``max_failed_fraction`` and
    ``max_negative_chars`` go to the answerer (see the module docstring).
    """
    from ants.mllm.answering import CachedAnswerer
    from ants.mllm.cache import AnswerCache
    from ants.mllm.prompts import Prompting

    prompting_config = dict(config)
    if config.get("backend") == "demo" and "family" not in config:
        # the demo model's prompt family follows its architecture
        prompting_config["family"] = config.get("architecture", "llava")
    prompting = Prompting.from_config(prompting_config)
    batch_size = config.get("batch_size", 16)
    backend = build_backend(config)
    cache = AnswerCache(cache_path) if cache_path is not None else None
    return CachedAnswerer(
        backend,
        cache,
        prompting,
        batch_size=batch_size,
        progress=progress,
        parse_style=parse_style,
        max_failed_fraction=max_failed_fraction,
        max_negative_chars=max_negative_chars,
    )
