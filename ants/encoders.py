"""Frozen CLIP encoders (open_clip): which model to build, and batched image / text encoding.

A :class:`ClipSpec` says which CLIP to use; :func:`load_clip` builds it and returns a
:class:`ClipEncoder`, which turns image files and strings into L2-normalised float32 rows.

Where the weights come from
---------------------------
* ``pretrained`` names published weights: an open_clip hub tag for ``model`` (e.g.
  ``ViT-B-16`` + ``openai``, the paper's backbone). The tag also fixes the preprocessing
  (mean/std, interpolation) and the activation (OpenAI's checkpoints use QuickGELU; it is
  switched on automatically when the tag says so, whatever the model config's default).
* ``weights_path`` is a local checkpoint file (a state dict, ``.safetensors``, an open_clip
  ``.bin``/``.pt`` or OpenAI's original TorchScript ``.pt``). With ``pretrained`` set as well,
  the file is used INSTEAD of downloading the tag's weights, while the tag still fixes the
  preprocessing: this is how an offline machine uses a checkpoint copied from elsewhere.
* Neither: random weights drawn from ``seed`` (deterministic), e.g. the tiny offline demo
  model :meth:`ClipSpec.tiny` (architecture ``"tiny"``: 64-d embeddings, 2-layer ViT at
  32 px, 2-layer text tower, open_clip's bundled BPE tokenizer; no download of any kind).
* ``model`` may also be an open_clip schema name (``hf-hub:org/repo`` or
  ``local-dir:/path``); open_clip then reads config and weights from there.

Every failure to build the model raises one :class:`ClipLoadError` whose message names the
model, the tag or the file, and what to change.

Hub weights are fetched by open_clip into the Hugging Face cache (``HF_HOME`` /
``HF_HUB_CACHE``, or ``load_clip(..., cache_dir=...)``); a cached snapshot is reused offline.
:meth:`ClipEncoder.identity` records the model id, the pretrained tag and a ``revision``: the
hub commit of the downloaded snapshot when the file came from the hub cache, else
``"sha256:<hex>"`` of the weights file (local files, URL downloads); ``None`` for random weights.

Encoding conventions
--------------------
* Outputs are numpy float32 arrays of shape ``(n, d)`` with unit L2 norm per row
  (normalised in float32 after the forward pass), so cosines are dot products.
* Images are decoded by :func:`ants.images.open_rgb` (the same code as the manifest check:
  huge images refused before decoding, 16-bit / float images scaled to 8 bits) and go through
  open_clip's own eval transform (for the paper's model: resize the shorter side to 224,
  bicubic, center crop 224, CLIP mean/std) in a torch ``DataLoader``.
* Long encodings show progress (:mod:`ants.progress`): a bar on a terminal, log lines in a
  log file.
* The model is in eval mode and runs under ``torch.inference_mode()``; on CPU with fp32 the
  result is deterministic (same inputs and batch size give bit-identical features).
* Precision: ``fp32`` everywhere; ``fp16``/``bf16`` are autocast around the forward pass with
  fp32 weights. ``fp16`` on CPU is refused (CPU half-precision kernels are slow and partly
  missing): use ``fp32`` or ``bf16`` there.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import string
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

import ants
from ants import numerics
from ants._io import canonical_json, file_digest, json_default
from ants.devices import DEVICES, resolve_device  # noqa: F401 (re-exported)
from ants.images import DEFAULT_MAX_PIXELS, ImageError, open_rgb
from ants.progress import progress as _progress

__all__ = [
    "ARCHITECTURES",
    "ClipEncoder",
    "ClipLoadError",
    "ClipSpec",
    "EncodedImages",
    "ImageFailure",
    "ImageReadError",
    "load_clip",
    "resolve_device",
]

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16", "bf16"]
PRECISIONS = ("fp32", "fp16", "bf16")

# Architectures defined by ants itself (model configs as data, like open_clip's JSON files).
# open_clip only builds models from its registered config names, so each of these is built
# from ``_ARCH_BASE`` with EVERY top-level key of that base config replaced (checked at load).
ARCHITECTURES: dict[str, dict[str, Any]] = {
    "tiny": {
        "embed_dim": 64,
        "vision_cfg": {
            "image_size": 32,
            "layers": 2,
            "width": 64,
            "patch_size": 8,
            "head_width": 32,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 64,
            "heads": 2,
            "layers": 2,
        },
    },
}
_ARCH_BASE = "ViT-B-32"

_SPEC_KEYS = ("model", "pretrained", "weights_path", "overrides", "seed")


class ClipLoadError(RuntimeError):
    """The CLIP model could not be built (unknown name or tag, missing or bad weights, ...)."""


class ImageReadError(ValueError):
    """An image file could not be opened or decoded; the message names the file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"cannot read image {path}: {reason}")
        self.path = path
        self.reason = reason


class ImageFailure(NamedTuple):
    """One image that could not be encoded: its position in the input, its path, why."""

    index: int
    path: str
    message: str


class EncodedImages(NamedTuple):
    """What :meth:`ClipEncoder.encode_images` returns.

    ``features[j]`` belongs to the j-th path with ``ok`` True, i.e. ``features`` rows are
    ``[p for p, k in zip(paths, ok) if k]``. With ``on_error='raise'`` every entry of ``ok``
    is True and ``failures`` is empty.
    """

    features: np.ndarray
    ok: np.ndarray
    failures: tuple[ImageFailure, ...]


@dataclass(frozen=True)
class ClipSpec:
    """Which CLIP model to build (see the module docstring for how the fields combine).

    * ``model``: an open_clip model name (``open_clip.list_models()``, e.g. ``"ViT-B-16"``),
      an ants architecture (:data:`ARCHITECTURES`, e.g. ``"tiny"``) or an open_clip schema
      name (``"hf-hub:org/repo"``, ``"local-dir:/path"``).
    * ``pretrained``: an open_clip hub tag for ``model`` (``"openai"``, ``"laion2b_s34b_b88k"``,
      ...) or None.
    * ``weights_path``: a local checkpoint file, or None.
    * ``overrides``: model constructor keywords applied on top of the config; dict values
      (``vision_cfg``, ``text_cfg``) are merged key by key, other values replace.
    * ``seed``: torch seed for the initial (random) weights; only matters without weights.
    """

    model: str
    pretrained: str | None = None
    weights_path: str | None = None
    overrides: Mapping[str, Any] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"ClipSpec.model must be a non-empty string, got {self.model!r}")
        if self.pretrained is not None and (
            not isinstance(self.pretrained, str) or not self.pretrained
        ):
            raise ValueError(
                f"ClipSpec.pretrained must be a hub tag string or None, got {self.pretrained!r}"
            )
        if self.weights_path is not None:
            if not isinstance(self.weights_path, (str, os.PathLike)) or not str(self.weights_path):
                raise ValueError(
                    f"ClipSpec.weights_path must be a file path or None, got {self.weights_path!r}"
                )
            object.__setattr__(self, "weights_path", str(self.weights_path))
        if self.overrides is not None and not isinstance(self.overrides, Mapping):
            raise ValueError(
                f"ClipSpec.overrides must be a mapping of model keywords or None, got {self.overrides!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"ClipSpec.seed must be an integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))

    @classmethod
    def tiny(cls, seed: int = 0) -> ClipSpec:
        """The tiny random-weight model of the offline demo and the tests (64-d features)."""
        return cls(model="tiny", seed=seed)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str) -> ClipSpec:
        """A spec from a config section (``params.yaml``) or a ``"model"`` / ``"model:tag"`` string.

        Mapping keys: ``model`` (required), ``pretrained``, ``weights_path``, ``overrides``,
        ``seed``; any other key is an error that names it.
        """
        if isinstance(config, str):
            if config.startswith(("hf-hub:", "local-dir:")):
                return cls(model=config)
            model, _, tag = config.partition(":")
            return cls(model=model, pretrained=tag or None)
        if not isinstance(config, Mapping):
            raise ValueError(
                f"a CLIP config must be a mapping or a string, got {type(config).__name__}"
            )
        unknown = sorted(set(config) - set(_SPEC_KEYS))
        if unknown:
            raise ValueError(
                f"unknown CLIP config key(s) {unknown}; valid keys: {list(_SPEC_KEYS)}"
            )
        if "model" not in config:
            raise ValueError(f"a CLIP config needs a 'model' key (valid keys: {list(_SPEC_KEYS)})")
        kwargs = {k: config[k] for k in _SPEC_KEYS if k in config and config[k] is not None}
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the inverse of :meth:`from_config`)."""
        return {
            "model": self.model,
            "pretrained": self.pretrained,
            "weights_path": self.weights_path,
            "overrides": _jsonable(dict(self.overrides)) if self.overrides else None,
            "seed": self.seed,
        }


# --------------------------------------------------------------------------------------
# building the model


def _jsonable(value: Any) -> Any:
    """Tuples -> lists, numpy scalars -> Python, so the value survives a JSON round trip."""
    return json.loads(json.dumps(value, default=json_default))


def _merge_overrides(
    base: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    merged = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in base.items()}
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _unknown_model_error(model: str) -> ClipLoadError:
    valid = list(ARCHITECTURES) + open_clip.list_models()
    close = difflib.get_close_matches(model, valid, n=6, cutoff=0.5)
    hint = f"close matches: {close}" if close else "see open_clip.list_models()"
    return ClipLoadError(
        f"unknown CLIP model {model!r}; {hint}. Valid names are open_clip's model configs, "
        f"the ants architectures {list(ARCHITECTURES)}, or 'hf-hub:org/repo' / 'local-dir:/path'."
    )


def _is_torchscript_archive(path: str) -> bool:
    """OpenAI's original checkpoints are TorchScript zips (they hold a ``constants.pkl``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(name.endswith("constants.pkl") for name in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _offline_note() -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return " (HF_HUB_OFFLINE is set, so nothing can be downloaded)" if offline else ""


class _DropRandomInitNotice(logging.Filter):
    """open_clip logs "initialized randomly" before ants loads the weights itself: drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


def _hub_source(tag_cfg: Mapping[str, Any]) -> str:
    hub = tag_cfg.get("hf_hub")
    if hub:
        return f"the Hugging Face hub ({hub.rstrip('/')})"
    return tag_cfg.get("url") or "?"


def _snapshot_revision(path: str) -> str | None:
    """The commit hash of a file in a Hugging Face cache (``.../snapshots/<commit>/<file>``)."""
    parts = os.path.normpath(path).split(os.sep)
    for i in range(len(parts) - 2, 0, -1):
        if (
            parts[i - 1] == "snapshots"
            and len(parts[i]) == 40
            and all(c in string.hexdigits for c in parts[i])
        ):
            return parts[i]
    return None


def _fetch_tag(
    model: str, tag: str, tag_cfg: Mapping[str, Any], cache_dir: str | None = None
) -> str:
    """Download (or find in the hub cache) the checkpoint of a hub tag; one clear error if not."""
    source = _hub_source(tag_cfg)
    where = f" into the cache {cache_dir}" if cache_dir else ""
    try:
        path = open_clip.download_pretrained(dict(tag_cfg), cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - every download failure becomes one error
        path, reason = "", f"{type(exc).__name__}: {str(exc).rstrip('. ')}"
    else:
        reason = "no file was returned"
    if not path or not os.path.isfile(path):
        raise ClipLoadError(
            f"could not fetch the weights of CLIP model {model!r} with pretrained tag {tag!r} "
            f"from {source}{where}{_offline_note()}: {reason}. To use a checkpoint already on disk, "
            f"set weights_path to the local file (keep pretrained={tag!r} so its preprocessing "
            f"is used), e.g. clip: {{model: {model}, pretrained: {tag}, weights_path: /path/to/weights.bin}}."
        )
    return path


def _load_weights(model: torch.nn.Module, path: str, what: str) -> None:
    weights_only = not _is_torchscript_archive(path)
    try:
        open_clip.load_checkpoint(model, path, strict=True, weights_only=weights_only)
    except Exception as exc:  # noqa: BLE001
        raise ClipLoadError(
            f"could not load the weights file {path} into {what}: {type(exc).__name__}: {exc}"
        ) from exc


def _build(spec: ClipSpec, cache_dir: str | None = None):
    """(model on CPU in fp32, eval transform, tokenizer, provenance dict)."""
    name = spec.model
    overrides = dict(spec.overrides or {})
    provenance: dict[str, Any] = {
        "weights_file": None,
        "quick_gelu_from_tag": False,
        "weights_source": None,
        "hub_revision": None,
        "cache_dir": cache_dir,
    }

    if spec.weights_path is not None and not os.path.isfile(spec.weights_path):
        raise ClipLoadError(
            f"weights file not found: {spec.weights_path} (ClipSpec.weights_path for model {name!r}); "
            f"check the path, or set weights_path to None to use the pretrained tag or random weights"
        )

    quiet = _DropRandomInitNotice()
    logging.getLogger().addFilter(quiet)
    try:
        return _build_seeded(spec, name, overrides, provenance, cache_dir)
    finally:
        logging.getLogger().removeFilter(quiet)


def _build_seeded(
    spec: ClipSpec,
    name: str,
    overrides: dict[str, Any],
    provenance: dict[str, Any],
    cache_dir: str | None = None,
):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        if name.startswith(("hf-hub:", "local-dir:")):
            if spec.pretrained:
                raise ClipLoadError(
                    f"model {name!r} names its own weights source; pretrained={spec.pretrained!r} "
                    f"would be ignored: set pretrained to None"
                )
            try:
                model, _, preprocess = open_clip.create_model_and_transforms(name, **overrides)
                tokenizer = open_clip.get_tokenizer(name)
            except Exception as exc:  # noqa: BLE001
                raise ClipLoadError(
                    f"could not build CLIP model {name!r}{_offline_note()}: "
                    f"{type(exc).__name__}: {str(exc).rstrip('. ')}. "
                    f"To work offline, download the checkpoint elsewhere and use a built-in model "
                    f"name with weights_path pointing at the local file."
                ) from exc
            if spec.weights_path:
                _load_weights(model, spec.weights_path, f"CLIP model {name!r}")
                provenance["weights_file"] = spec.weights_path
            return model, preprocess, tokenizer, provenance

        if name in ARCHITECTURES:
            if spec.pretrained:
                raise ClipLoadError(
                    f"the ants architecture {name!r} has no published weights (pretrained="
                    f"{spec.pretrained!r}); set pretrained to None (random weights from seed) "
                    f"or give a weights_path"
                )
            base_keys = set(open_clip.get_model_config(_ARCH_BASE) or {})
            arch = ARCHITECTURES[name]
            missing = base_keys - set(arch)
            if missing:  # pragma: no cover - guards against an open_clip config change
                raise ClipLoadError(
                    f"architecture {name!r} must set {sorted(missing)} of {_ARCH_BASE!r}"
                )
            config_name, kwargs, tag_cfg = _ARCH_BASE, _merge_overrides(arch, overrides), {}
        else:
            config = open_clip.get_model_config(name)
            if config is None:
                raise _unknown_model_error(name)
            tag_cfg = {}
            if spec.pretrained:
                tag_cfg = open_clip.get_pretrained_cfg(name, spec.pretrained)
                if not tag_cfg:
                    tags = open_clip.list_pretrained_tags_by_model(name)
                    hint = (
                        f"valid tags for {name!r}: {tags}"
                        if tags
                        else f"open_clip has no published weights for {name!r}"
                    )
                    extra = (
                        f"; {spec.pretrained!r} looks like a file path: put it in weights_path instead"
                        if os.sep in spec.pretrained or os.path.exists(spec.pretrained)
                        else ""
                    )
                    raise ClipLoadError(
                        f"unknown pretrained tag {spec.pretrained!r} for CLIP model {name!r}; {hint}{extra}"
                    )
            config_name = name
            kwargs = _merge_overrides(
                {k: v for k, v in config.items() if isinstance(v, Mapping)}, overrides
            )
            # the tag's activation wins over the config default (OpenAI weights need QuickGELU)
            if (
                tag_cfg.get("quick_gelu")
                and not config.get("quick_gelu")
                and "quick_gelu" not in overrides
            ):
                kwargs["quick_gelu"] = True
                provenance["quick_gelu_from_tag"] = True

        weights_file = spec.weights_path
        if weights_file is None and spec.pretrained:
            weights_file = _fetch_tag(name, spec.pretrained, tag_cfg, cache_dir)
            hub = tag_cfg.get("hf_hub")
            provenance["hub_revision"] = _snapshot_revision(weights_file)
            provenance["weights_source"] = (
                f"hf-hub:{hub.rstrip('/')}"
                if hub and provenance["hub_revision"]
                else tag_cfg.get("url") or None
            )
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                config_name,
                pretrained=None,
                image_mean=tag_cfg.get("mean"),
                image_std=tag_cfg.get("std"),
                image_interpolation=tag_cfg.get("interpolation"),
                image_resize_mode=tag_cfg.get("resize_mode"),
                **kwargs,
            )
        except Exception as exc:  # noqa: BLE001
            raise ClipLoadError(
                f"could not build CLIP model {name!r} with overrides {overrides}: {type(exc).__name__}: {exc}"
            ) from exc
    if weights_file is not None:
        _load_weights(model, weights_file, f"CLIP model {name!r}")
        provenance["weights_file"] = weights_file
    if name in ARCHITECTURES:
        context = int(kwargs["text_cfg"].get("context_length", 77))
        tokenizer = open_clip.SimpleTokenizer(context_length=context)  # bundled BPE, no hub
    else:
        try:
            tokenizer = open_clip.get_tokenizer(
                config_name, context_length=getattr(model, "context_length", None)
            )
        except Exception as exc:  # noqa: BLE001
            raise ClipLoadError(
                f"could not build the tokenizer of CLIP model {name!r}{_offline_note()}: {type(exc).__name__}: {exc}"
            ) from exc
    return model, preprocess, tokenizer, provenance


def load_clip(
    spec: ClipSpec | Mapping[str, Any] | str,
    device: str | torch.device = "auto",
    precision: Precision = "fp32",
    *,
    cache_dir: str | os.PathLike | None = None,
) -> ClipEncoder:
    """Build the CLIP model of ``spec`` on ``device`` and wrap it in a :class:`ClipEncoder`.

    ``spec`` may also be a config mapping or string (see :meth:`ClipSpec.from_config`).
    ``cache_dir``: where hub weights are downloaded to and looked up (default: the Hugging
    Face cache, ``HF_HUB_CACHE`` or ``$HF_HOME/hub``); it does not change the features, so it
    is not part of :meth:`ClipEncoder.identity`.
    Weights are created on the CPU (so random weights do not depend on the device) and then
    moved. Raises :class:`ClipLoadError` when the model cannot be built, ``ValueError`` for a
    bad ``device`` / ``precision`` (including ``fp16`` on CPU).
    """
    if not isinstance(spec, ClipSpec):
        spec = ClipSpec.from_config(spec)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {list(PRECISIONS)}")
    dev = resolve_device(device)
    if precision == "fp16" and dev.type == "cpu":
        raise ValueError(
            "precision 'fp16' is not supported on CPU (half-precision autocast needs a GPU); "
            "use precision 'fp32' or 'bf16' on CPU"
        )
    model, preprocess, tokenizer, provenance = _build(
        spec, os.fspath(cache_dir) if cache_dir is not None else None
    )
    model = model.to(dev).eval()
    for param in model.parameters():
        param.requires_grad_(False)
    return ClipEncoder(spec, model, preprocess, tokenizer, dev, precision, provenance)


# --------------------------------------------------------------------------------------
# encoding


class _ImageFiles(torch.utils.data.Dataset):
    """Opens, decodes (:func:`ants.images.open_rgb`) and transforms one image; failures are
    returned, not raised."""

    def __init__(
        self, paths: Sequence[str], transform, max_pixels: int | None = DEFAULT_MAX_PIXELS
    ):
        self.paths = paths
        self.transform = transform
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        path = self.paths[index]
        try:
            tensor = self.transform(open_rgb(path, max_pixels=self.max_pixels))
        except ImageError as exc:  # recorded per file
            return index, None, exc.reason
        except Exception as exc:  # noqa: BLE001 - a transform failure, recorded per file
            return index, None, f"{type(exc).__name__}: {exc}"
        return index, tensor, None


def _collate(items):
    good = [(i, t) for i, t, _ in items if t is not None]
    bad = [(i, msg) for i, t, msg in items if t is None]
    indices = torch.tensor([i for i, _ in good], dtype=torch.long)
    pixels = torch.stack([t for _, t in good]) if good else None
    return indices, pixels, bad


class ClipEncoder:
    """A loaded, frozen CLIP model with its eval transform and tokenizer (see :func:`load_clip`)."""

    def __init__(self, spec, model, preprocess, tokenizer, device, precision, provenance):
        self.spec: ClipSpec = spec
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device: torch.device = device
        self.precision: str = precision
        self._provenance = provenance
        self._weights_sha256: str | None = None
        self.dim: int = int(self.encode_texts([""]).shape[1])

    def __repr__(self) -> str:
        return (
            f"ClipEncoder(model={self.spec.model!r}, pretrained={self.spec.pretrained!r}, "
            f"dim={self.dim}, device={str(self.device)!r}, precision={self.precision!r})"
        )

    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def forward_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """The image tower on a preprocessed batch ``(n, 3, H, W)`` already on the device, in
        the encoder's precision (inference mode, autocast for fp16 / bf16): the raw features
        ``(n, d)`` on the device, not normalised (what :meth:`encode_images` runs per batch;
        the GPU check times it alone as the model-only throughput)."""
        with torch.inference_mode(), self._autocast():
            return self.model.encode_image(pixels)

    def _finish(self, features: torch.Tensor) -> np.ndarray:
        return F.normalize(features.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)

    def encode_images(
        self,
        paths: Sequence[str | os.PathLike],
        *,
        batch_size: int = 64,
        num_workers: int = 0,
        progress: bool = True,
        on_error: Literal["raise", "skip"] = "raise",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> EncodedImages:
        """Encode image files into unit float32 rows.

        Files are read with :func:`ants.images.open_rgb` (8-bit RGB; more than ``max_pixels``
        pixels refused before decoding) and transformed by open_clip's eval transform in a
        ``DataLoader`` (``num_workers`` processes). A file that cannot be
        read or decoded raises :class:`ImageReadError` naming it (``on_error='raise'``, the
        default; nothing is returned) or is left out and listed in ``failures``
        (``on_error='skip'``). Returns :class:`EncodedImages` ``(features, ok, failures)``.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if isinstance(paths, (str, os.PathLike)):
            raise TypeError("paths must be a sequence of file paths, not a single path")
        _check_positive(batch_size, "batch_size")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
        paths = [os.fspath(p) for p in paths]
        n = len(paths)
        out = np.empty((n, self.dim), dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        failures: list[ImageFailure] = []
        if n:
            loader = torch.utils.data.DataLoader(
                _ImageFiles(paths, self.preprocess, max_pixels),
                batch_size=batch_size,
                shuffle=False,
                num_workers=num_workers,
                collate_fn=_collate,
                pin_memory=self.device.type == "cuda",
            )
            with (
                _progress(total=n, desc="encoding images", unit="img", enabled=progress) as bar,
                torch.inference_mode(),
                self._autocast(),
            ):
                for indices, pixels, bad in loader:
                    for index, message in bad:
                        if on_error == "raise":
                            raise ImageReadError(paths[index], message)
                        failures.append(ImageFailure(index, paths[index], message))
                    if pixels is not None:
                        pixels = pixels.to(self.device, non_blocking=True)
                        rows = indices.numpy()
                        out[rows] = self._finish(self.forward_images(pixels))
                        ok[rows] = True
                    bar.update(len(indices) + len(bad))
        if failures:
            log.warning("%d of %d images could not be read and were skipped", len(failures), n)
        return EncodedImages(np.ascontiguousarray(out[ok]), ok, tuple(failures))

    def encode_texts(
        self,
        texts: Sequence[str],
        *,
        template: str = "{}",
        batch_size: int = 256,
        progress: bool = False,
    ) -> np.ndarray:
        """Encode ``template.format(text)`` for each text into unit float32 rows ``(n, d)``.

        ``template`` must hold exactly one ``{}`` (e.g. ``"The nice {}."``); the default
        ``"{}"`` encodes the texts as they are.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not a single string")
        _check_template(template)
        _check_positive(batch_size, "batch_size")
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings; item {bad[0]} is {texts[bad[0]]!r}")
        prompts = [template.format(t) for t in texts]
        if not prompts:
            return np.empty((0, self.dim), dtype=np.float32)
        chunks = []
        with (
            _progress(
                total=len(prompts), desc="encoding texts", unit="text", enabled=progress
            ) as bar,
            torch.inference_mode(),
            self._autocast(),
        ):
            for start in range(0, len(prompts), batch_size):
                batch = prompts[start : start + batch_size]
                tokens = self.tokenizer(batch).to(self.device)
                chunks.append(self._finish(self.model.encode_text(tokens)))
                bar.update(len(batch))
        return np.ascontiguousarray(np.concatenate(chunks, axis=0))

    def identity(self) -> dict[str, Any]:
        """Everything that determines the features, as a JSON-ready dict.

        Used as Parquet metadata and in cache keys: model (``model_id``), pretrained tag,
        ``revision`` (the hub commit of the cached snapshot the weights came from, else
        ``"sha256:<hex>"`` of the weights file, None for random weights), where the weights
        came from (``weights_source``: ``hf-hub:<repo>``, a URL or None), weights file and its
        sha256, overrides, seed (meaningful only for random weights), precision,
        preprocessing, the versions of ants, torch and open_clip, and the CPU numerics in
        effect (:func:`ants.numerics.provenance`).
        """
        weights_file = self._provenance.get("weights_file")
        if weights_file and self._weights_sha256 is None:
            self._weights_sha256 = file_digest(weights_file)
        cfg = dict(getattr(self.model.visual, "preprocess_cfg", {}) or {})
        hub_revision = self._provenance.get("hub_revision")
        revision = hub_revision or (
            f"sha256:{self._weights_sha256}" if self._weights_sha256 else None
        )
        return _jsonable(
            {
                "model": self.spec.model,
                "model_id": self.spec.model,
                "revision": revision,
                "weights_source": self._provenance.get("weights_source")
                or ("local file" if self.spec.weights_path else None),
                "architecture": ARCHITECTURES.get(self.spec.model),
                "pretrained": self.spec.pretrained,
                "weights_path": self.spec.weights_path,
                "weights_file": weights_file,
                "weights_sha256": self._weights_sha256,
                "random_init": weights_file is None,
                "overrides": dict(self.spec.overrides) if self.spec.overrides else None,
                "quick_gelu_from_tag": self._provenance.get("quick_gelu_from_tag", False),
                "seed": self.spec.seed,
                "embed_dim": self.dim,
                "precision": self.precision,
                "tokenizer": type(self.tokenizer).__name__,
                "context_length": getattr(self.tokenizer, "context_length", None),
                "preprocessing": {
                    **{
                        k: cfg[k]
                        for k in (
                            "size",
                            "resize_mode",
                            "interpolation",
                            "mean",
                            "std",
                            "fill_color",
                        )
                        if k in cfg
                    },
                    "transform": [
                        line.strip() for line in repr(self.preprocess).splitlines()[1:-1]
                    ],
                },
                "versions": {
                    "ants": ants.__version__,
                    "torch": torch.__version__,
                    "open_clip": open_clip.__version__,
                },
                # the CPU code path pinned for reproducible bits (the CPU's pre-processing and,
                # on the CPU, the forward pass)
                "cpu_numerics": numerics.provenance(),
            }
        )

    def fingerprint(self) -> str:
        """The sha256 hex digest of :meth:`identity`'s canonical JSON, without local file paths.

        Stable across machines and checkout locations (the weights are identified by their
        sha256, not where they lie), so it can key caches that are shared or moved.
        """
        ident = self.identity()
        for key in ("weights_path", "weights_file"):
            ident.pop(key, None)
        return hashlib.sha256(canonical_json(ident).encode("utf-8")).hexdigest()


def _check_positive(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_template(template: str) -> None:
    if not isinstance(template, str):
        raise TypeError(f"template must be a string with one '{{}}', got {template!r}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(f"invalid prompt template {template!r}: {exc}") from exc
    if fields != [""]:
        raise ValueError(
            f"prompt template {template!r} must contain exactly one '{{}}' placeholder "
            f"(e.g. 'The nice {{}}.'); found {len(fields)} field(s) {fields}"
        )
