"""The ``transformers`` MLLM backend: any ``AutoModelForImageTextToText`` with a chat template.

LLaVA-1.5 (``llava-hf/llava-1.5-7b-hf``), Qwen2-VL (``Qwen/Qwen2-VL-2B-Instruct``) and the
offline demo model (:mod:`ants.mllm.demo`) all run through :class:`TransformersBackend`.

* ``model`` is a hub id or a local folder (``save_pretrained`` layout).
* **What keys the answers** (:meth:`TransformersBackend.identity`, part of every cache key):
  a local folder is keyed by its name (``model_id``, unless set) and a digest of its content
  (:func:`local_model_revision`: the SHA-256 of every file but hidden ones and docs), so
  moving or copying the folder keeps its answers and new weights in the same folder never
  reuse old ones. A hub id is keyed by the hub COMMIT its ``revision`` (default ``"main"``)
  resolves to: in the local Hugging Face cache (``$HF_HUB_CACHE``, or ``$HF_HOME/hub``) when
  the ref is there, else on the hub (the ref's ``config.json`` is downloaded into that cache,
  so later runs resolve it offline to the same commit); a 40-hex ``revision`` is that commit
  already. Only when the ref is neither cached nor resolvable on the hub (offline mode,
  network or hub error) the name itself is used, with a warning: pin a commit for
  reproducible caches (``"main"`` moves). The commit that keyed the answers is the one loaded.
  An explicit ``revision`` for a local folder is taken as given (the demo backend does so).
* ``device`` (``auto`` = cuda, else mps, else cpu; :mod:`ants.devices`) and ``dtype`` (fp32 /
  fp16 / bf16; part of the cache key): the weights are loaded straight onto that device in that
  dtype (``from_pretrained(..., dtype=..., device_map={"": device})``, which needs the
  ``accelerate`` package), so a 7B model never passes through host memory as a whole.
* ``processor_kwargs``: passed to ``AutoProcessor.from_pretrained`` and CHECKED when the
  processor is loaded (:func:`check_processor_settings`): a key the processor does not know,
  a setting it warns about as deprecated, or an image setting that leaves its output unchanged
  on the probe images (:data:`PROBE_SIZES`) is a :class:`BackendError` naming the key. For
  Qwen2-VL use the image processor's ``size``: the authors' setting (256 to 1280 tokens of
  28 x 28 pixels) is ``{size: {shortest_edge: 200704, longest_edge: 1003520}}`` (the older
  ``min_pixels`` / ``max_pixels`` are refused where the installed transformers warns that they
  are deprecated, as 5.25 does; 5.17 still applies them). With
  processor settings the cache key holds them AND the image-token count the loaded processor
  gives for each probe size (``image_tokens``), so answers are keyed by what was applied; this
  loads the processor (not the weights) to key the answers.
* A model and processor already built in memory: :meth:`TransformersBackend.from_model`.
* Generation is greedy (``do_sample=False, num_beams=1``), in batches with LEFT padding, so a
  batch gives the same texts as one query at a time (tested on the demo model).
* Each conversation is one user turn: ``[image, text]`` (the authors' order). ENS queries carry
  their image, resized first when the settings say ``image_size``; VSNL queries carry a black
  ``blank_image_size`` image (the authors' choice) or no image at all when it is ``None``.
* A batch must hold queries of one kind (the generation settings apply to all of them).
* Images are decoded by :func:`ants.images.open_rgb` (as for the manifest and the CLIP
  encoder: 16-bit and float images scaled by their range, more than
  :data:`ants.images.DEFAULT_MAX_PIXELS` pixels refused before decoding).
* An image that cannot be read fails that query only; an error inside ``generate`` fails the
  batch; both become ``Answer(status="failed")`` upstream and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ants.devices import check_device_name, resolve_device
from ants.mllm.base import BackendError, Query

log = logging.getLogger(__name__)
_COMMIT = re.compile(r"[0-9a-f]{40}")
#: files of a model folder that never change an answer (not part of its content digest)
_NOT_CONTENT = re.compile(r"(?i)^(readme|license|licence|notice|citation)([._-].*)?$|.*\.md$")

DTYPES = ("fp32", "fp16", "bf16")
#: image sizes (width, height) the processor check and the cache key probe: the VSNL blank
#: image, the qwen2vl ENS size, a CLIP-sized and a photo-sized image
PROBE_SIZES = ((28, 28), (56, 56), (224, 224), (640, 480))

# (kind, input_length, settings) -> list of transformers LogitsProcessor
LogitsProcessorFactory = Callable[[str, int, Mapping], list]


def _torch_dtype(dtype: str):
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ValueError(f"dtype: unknown value {dtype!r}; valid values: {', '.join(DTYPES)}")
    return table[dtype]


def dtype_name(dtype) -> str:
    """``"fp32"`` / ``"fp16"`` / ``"bf16"`` for a torch dtype; ``ValueError`` for any other."""
    import torch

    names = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    if dtype not in names:
        raise ValueError(f"dtype: {dtype} is not one of {', '.join(DTYPES)}")
    return names[dtype]


def looks_like_path(model: str) -> bool:
    """True for ``./x``, ``/x``, ``~/x`` or anything that exists on disk (else: a hub id)."""
    return model.startswith((".", "/", "~")) or Path(model).exists()


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache in use: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else the default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def resolve_hub_revision(
    repo_id: str, revision: str = "main", cache_dir: str | os.PathLike | None = None
) -> str | None:
    """The commit hash ``revision`` of hub model ``repo_id`` stands for, or None if unknown.

    A 40-hex ``revision`` is returned as is. A branch or tag name is resolved through the local
    Hugging Face cache (``cache_dir``, default :func:`hub_cache_dir`): the snapshot holding the
    model's ``config.json`` for that ref. Never touches the network (:func:`fetch_hub_revision`
    asks the hub).
    """
    if _COMMIT.fullmatch(revision):
        return revision
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(
            repo_id,
            "config.json",
            cache_dir=str(cache_dir if cache_dir is not None else hub_cache_dir()),
            revision=revision,
        )
    except Exception:  # an invalid repo id or ref name: nothing to resolve
        return None
    if not isinstance(found, str):
        return None
    return Path(found).parent.name


def hub_offline() -> bool:
    """True when the hub must not be reached: ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is
    set now, or ``huggingface_hub`` is in offline mode (it reads the variable at import)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    from huggingface_hub import constants

    is_offline = getattr(constants, "is_offline_mode", None)
    return bool(
        is_offline() if callable(is_offline) else getattr(constants, "HF_HUB_OFFLINE", False)
    )


def fetch_hub_revision(
    repo_id: str, revision: str = "main", cache_dir: str | os.PathLike | None = None
) -> str:
    """The commit hash ``revision`` of hub model ``repo_id`` stands for, asked of the hub.

    TOUCHES THE NETWORK (unlike :func:`resolve_hub_revision`) for a branch or tag name: the
    model's ``config.json`` at that ref is downloaded into the Hugging Face cache (``cache_dir``,
    default :func:`hub_cache_dir`), which records the ref, so that :func:`resolve_hub_revision`
    finds the same commit offline afterwards. A 40-hex ``revision`` is returned as is, without
    a request. Raises whatever ``huggingface_hub`` raises (offline mode, network or hub errors:
    unknown repo or ref, gated repo), or :class:`BackendError` if no commit can be read off the
    download.
    """
    if _COMMIT.fullmatch(revision):
        return revision
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    # one HEAD request first, without retries: without network this fails within the etag
    # timeout (HF_HUB_ETAG_TIMEOUT, 10 s), where hf_hub_download would retry for minutes
    get_hf_file_metadata(hf_hub_url(repo_id, "config.json", revision=revision))
    path = hf_hub_download(
        repo_id,
        "config.json",
        revision=revision,
        cache_dir=str(cache_dir if cache_dir is not None else hub_cache_dir()),
    )
    commit = Path(path).parent.name  # <cache>/models--org--name/snapshots/<commit>/config.json
    if not _COMMIT.fullmatch(commit):
        raise BackendError(f"no commit hash in the path of the downloaded config.json: {path}")
    return commit


def _content_files(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or _NOT_CONTENT.match(path.name):
            continue
        if path.is_file():
            files.append(path)
    return files


def _digest_memo_dir() -> Path:
    root = os.environ.get("ANTS_CACHE_DIR") or Path.home() / ".cache" / "ants"
    return Path(root) / "file-digests"


def file_sha256(path: str | os.PathLike, memo: bool = True) -> str:
    """SHA-256 of a file, remembered across processes by (real path, size, mtime, inode).

    The memo lives in ``$ANTS_CACHE_DIR/file-digests`` (default ``~/.cache/ants``), one tiny
    file per (file, version), so multi-gigabyte weights are hashed once, not on every run. A
    file rewritten in place gets a new mtime and so a new digest.
    """
    from ants._io import file_digest

    path = Path(path)
    if not memo:
        return file_digest(path)
    st = path.stat()
    ident = f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}"
    entry = _digest_memo_dir() / (hashlib.sha256(ident.encode("utf-8")).hexdigest() + ".sha256")
    try:
        known = entry.read_text().strip()
        if _SHA256.fullmatch(known):
            return known
    except OSError:
        pass
    digest = file_digest(path)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
        tmp.write_text(digest + "\n")
        os.replace(tmp, entry)
    except OSError:
        pass  # a read-only home: just no memo
    return digest


_SHA256 = re.compile(r"[0-9a-f]{64}")


def local_model_revision(folder: str | os.PathLike, memo: bool = True) -> str:
    """``"sha256-<hex>"``: a digest of a model folder's content, names included.

    Every file under ``folder`` counts (config, weights or their index, tokenizer, processor,
    chat template ...) except hidden paths (``.cache/``, ``.git/``: download metadata) and
    documentation (README, LICENSE, ``*.md``). The digest covers each file's relative path and
    SHA-256 (:func:`file_sha256`), so it is the same wherever the folder lives.
    """
    folder = Path(folder).expanduser()
    files = _content_files(folder)
    if not files:
        raise BackendError(
            f"the local model folder {str(folder)!r} holds no files; "
            "`mllm.backends.transformers.model` must be a folder written by save_pretrained, or a hub id"
        )
    listing = [[str(p.relative_to(folder).as_posix()), file_sha256(p, memo)] for p in files]
    payload = json.dumps(listing, separators=(",", ":"), ensure_ascii=False)
    return "sha256-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


def built_model_revision(model, processor) -> str:
    """``"sha256-<hex>"`` of a model built in memory: every tensor of its state dict (name,
    dtype, shape, bytes; copied to the host one at a time) and the processor's configuration
    (``to_json_string()``: image processor settings, chat template) and vocabulary."""
    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{key}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    config = processor.to_json_string() if hasattr(processor, "to_json_string") else repr(processor)
    digest.update(config.encode("utf-8"))
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "get_vocab"):
        vocab = sorted(tokenizer.get_vocab().items())
        digest.update(json.dumps(vocab, ensure_ascii=False).encode("utf-8"))
    return "sha256-" + digest.hexdigest()


def _one_line(err: BaseException, limit: int = 400) -> str:
    text = " ".join(str(err).split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_image(path: str, size: Sequence[int] | None = None):
    """Open an image as 8-bit RGB with :func:`ants.images.open_rgb` (16-bit and float images
    scaled by their range, huge ones refused before decoding; an :class:`ants.images.ImageError`
    names the file), optionally resized to ``(width, height)`` with bilinear filtering."""
    from PIL import Image

    from ants.images import open_rgb

    im = open_rgb(path)
    if size is not None:
        im = im.resize((int(size[0]), int(size[1])), Image.BILINEAR)
    return im


def blank_image(size: Sequence[int]):
    """A black RGB image (the authors' placeholder for text-only VSNL queries: 28 x 28)."""
    from PIL import Image

    return Image.new("RGB", (int(size[0]), int(size[1])))


def probe_image(size: Sequence[int]):
    """A deterministic RGB test image of ``(width, height)``: smooth gradients, so that any
    change of resizing or cropping changes its pixels."""
    import numpy as np
    from PIL import Image

    w, h = int(size[0]), int(size[1])
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def image_token_id(processor) -> int | None:
    """The id of the token a processor repeats once per image feature, or None if it names none."""
    token_id = getattr(processor, "image_token_id", None)
    if isinstance(token_id, int):
        return token_id
    token = getattr(processor, "image_token", None)
    tokenizer = getattr(processor, "tokenizer", None)
    if isinstance(token, str) and tokenizer is not None:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != getattr(tokenizer, "unk_token_id", None):
            return token_id
    return None


def probe_processor(processor, sizes: Sequence[Sequence[int]] = PROBE_SIZES) -> dict:
    """What ``processor`` makes of one chat turn ``[image, "probe"]`` per image size.

    Returns ``{"image_tokens": {"WxH": n}, "pixels": {"WxH": sha256 of pixel_values},
    "warnings": [(category, message), ...]}``; ``n`` counts :func:`image_token_id` in the
    input ids (None when the processor names no image token). Warnings raised during the calls
    are recorded, not shown.
    """
    import warnings

    import numpy as np

    turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "probe"}]}]
    text = processor.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)
    token_id = image_token_id(processor)
    tokens, pixels = {}, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for size in sizes:
            key = f"{int(size[0])}x{int(size[1])}"
            out = processor(text=[text], images=[probe_image(size)], return_tensors="pt")
            ids = out["input_ids"]
            tokens[key] = None if token_id is None else int((ids == token_id).sum())
            values = np.ascontiguousarray(out["pixel_values"].float().numpy())
            pixels[key] = hashlib.sha256(repr(values.shape).encode() + values.tobytes()).hexdigest()
    found = [(w.category.__name__, " ".join(str(w.message).split())) for w in caught]
    return {"image_tokens": tokens, "pixels": pixels, "warnings": found}


def _parts(processor) -> list[tuple[str, object]]:
    named = [("processor", processor)]
    for attr in ("image_processor", "tokenizer", "video_processor"):
        part = getattr(processor, attr, None)
        if part is not None:
            named.append((attr.replace("_", " "), part))
    return named


def _image_settings(processor) -> set[str]:
    """The setting names the processor's image processor documents (its ``valid_kwargs``)."""
    part = getattr(processor, "image_processor", None)
    valid = getattr(part, "valid_kwargs", None)
    return set(getattr(valid, "__annotations__", {}) or {})


def _same(held, value) -> bool:
    if isinstance(value, Mapping):
        return all(_same(_get(held, k), v) for k, v in value.items())
    if isinstance(value, (list, tuple)) and isinstance(held, (list, tuple)):
        return list(held) == list(value)
    return held == value


def _get(held, key):
    if isinstance(held, Mapping):
        return held.get(key)
    return getattr(held, key, None)


def check_processor_settings(
    processor, settings: Mapping, baseline: Callable[[], object], what: str = "processor_kwargs"
) -> dict[str, int | None]:
    """Check that every processor setting was applied; the image-token counts per probe size.

    ``processor`` was loaded with ``settings``; ``baseline()`` loads the same processor without
    them. A :class:`BackendError` naming ``what.<key>`` when

    * the key is not a setting of the processor, its image processor (its documented
      ``valid_kwargs``), tokenizer or video processor;
    * the part that holds it holds another value than the one given (not applied);
    * processing the probe images warns that the setting is deprecated (transformers keeps
      such a setting for a while, then drops it silently: the answers would change under the
      same cache key);
    * the settings include image-processor settings and the processor's output for the probe
      images (:data:`PROBE_SIZES`: image-token counts and pixel values) is the same as without
      them: they are ignored, or equal the model's own setting (then leave them out).

    Returns :func:`probe_processor`'s ``image_tokens``: what the cache key records.
    """
    import transformers

    cls = f"{type(processor).__name__} (transformers {transformers.__version__})"
    image_keys = _image_settings(processor)
    given_image_keys = []
    for key, value in settings.items():
        if key in image_keys:  # checked below, on the processor's output
            given_image_keys.append(key)
            continue
        holders = [(n, part) for n, part in _parts(processor) if _get(part, key) is not None]
        if not holders:
            raise BackendError(
                f"{what}.{key}: not a setting of {cls}, of its image processor or of its "
                f"tokenizer; the image processor documents: {', '.join(sorted(image_keys)) or '(none)'}"
            )
        if not any(_same(_get(part, key), value) for _, part in holders):
            name, part = holders[0]
            raise BackendError(
                f"{what}.{key}: set to {value!r}, but the loaded {name} of {cls} holds "
                f"{_get(part, key)!r}: the setting was not applied"
            )
    try:
        probe = probe_processor(processor)
    except Exception as err:  # e.g. a size dict the image processor cannot use
        raise BackendError(
            f"{what}: {cls} fails on a probe image with the settings {dict(settings)}: "
            f"{type(err).__name__}: {_one_line(err)}"
        ) from err
    for category, message in probe["warnings"]:
        named = [k for k in settings if re.search(rf"\b{re.escape(str(k))}\b", message)]
        if named and category in ("FutureWarning", "DeprecationWarning"):
            raise BackendError(
                f"{what}.{named[0]}: {cls} warns: {message!r}; use the form it documents "
                "(for Qwen2-VL: size: {shortest_edge: MIN_PIXELS, longest_edge: MAX_PIXELS})"
            )
    if given_image_keys:
        base = probe_processor(baseline())
        if (base["image_tokens"], base["pixels"]) == (probe["image_tokens"], probe["pixels"]):
            raise BackendError(
                f"{what}: the image settings {', '.join(given_image_keys)} leave the output of "
                f"{cls} unchanged on the probe images (image tokens per size: "
                f"{probe['image_tokens']}): the processor ignores them, or they equal the "
                "model's own setting (then leave them out)"
            )
    if given_image_keys and None in probe["image_tokens"].values():
        raise BackendError(
            f"{what}: cannot count the image tokens of {cls} (it names no image token), so the "
            "image settings cannot key the answers"
        )
    return dict(probe["image_tokens"])


class TransformersBackend:
    """Greedy, batched, left-padded generation with a ``transformers`` image-text-to-text model.

    ``model`` is a hub id or a local folder; the model is loaded on :meth:`check` or on the
    first :meth:`generate` (straight onto ``device`` in ``dtype``), so answers served from the
    cache never load it. A model already built in memory: :meth:`from_model`.
    """

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "fp32",
        processor_kwargs: Mapping | None = None,
        name: str = "transformers",
        logits_processor_factory: LogitsProcessorFactory | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model: expected a hub id or a local folder, got {model!r}")
        if revision is not None and (not isinstance(revision, str) or not revision):
            raise ValueError(f"revision: expected a hub branch, tag or commit, got {revision!r}")
        if dtype not in DTYPES:
            raise ValueError(
                f"mllm.backends.{name}.dtype: unknown value {dtype!r}; valid values: {', '.join(DTYPES)}"
            )
        if processor_kwargs is not None and not isinstance(processor_kwargs, Mapping):
            raise ValueError(
                f"mllm.backends.{name}.processor_kwargs: expected a mapping, got {processor_kwargs!r}"
            )
        self.model_path: str | None = model
        self.is_local = looks_like_path(model)
        self.revision = revision
        self.device = check_device_name(device, f"mllm.backends.{name}.device")
        self.dtype = dtype
        self.processor_kwargs = dict(processor_kwargs or {})
        self.name = name
        self.logits_processor_factory = logits_processor_factory
        if model_id is not None:
            self.model_id = model_id
        elif self.is_local:
            self.model_id = Path(model).expanduser().resolve().name or model
        else:
            self.model_id = model
        self._model = None
        self._processor = None
        self._image_tokens: dict | None = None
        self._resolved: str | None = None
        self._built = False

    @classmethod
    def from_model(
        cls,
        model,
        processor,
        *,
        model_id: str,
        revision: str | None = None,
        name: str = "transformers",
        logits_processor_factory: LogitsProcessorFactory | None = None,
    ) -> TransformersBackend:
        """A backend over a model and processor already built in memory (not loaded from disk).

        ``model``: a transformers image-text-to-text model (``generate``), in fp32, fp16 or
        bf16, on the device it should run on (both are read off the model, and the dtype keys
        the answers). ``processor``: its processor, with a chat template; its tokenizer is set to
        LEFT padding (batched generation needs it). ``model_id`` names the model in the cache
        key and the logs. ``revision`` keys the answers: give one that changes whenever the
        weights or the processor change (a commit, a checkpoint digest); None = the SHA-256 of
        the weights and the processor's configuration (:func:`built_model_revision`, computed on
        the first :meth:`identity`: every tensor is copied to the host once to hash it).
        :meth:`close` drops both (the backend cannot generate afterwards).
        """
        if not isinstance(model_id, str) or not model_id:
            raise ValueError(
                f"model_id: expected a non-empty name for the built model, got {model_id!r}"
            )
        if revision is not None and (not isinstance(revision, str) or not revision):
            raise ValueError(f"revision: expected a non-empty string or None, got {revision!r}")
        if not callable(getattr(model, "generate", None)):
            raise ValueError(
                f"model: expected a transformers model with generate(), got {type(model).__name__}"
            )
        dtype = dtype_name(model.dtype)
        self = cls.__new__(cls)
        self.model_path = None
        self.is_local = False
        self.revision = revision
        self.device = str(model.device)
        self.dtype = dtype
        self.processor_kwargs = {}
        self.name = name
        self.logits_processor_factory = logits_processor_factory
        self.model_id = model_id
        self._image_tokens = None
        self._resolved = revision
        self._built = True
        self._model, self._processor = model.eval(), self._prepare_processor(processor)
        return self

    def __repr__(self) -> str:
        source = (
            f"model={self.model_path!r}" if not self._built else f"built model {self.model_id!r}"
        )
        return f"TransformersBackend({source}, revision={self.revision!r}, device={self.device!r}, dtype={self.dtype!r})"

    @property
    def model(self):
        """The loaded (or given) model; None until :meth:`check` or the first :meth:`generate`."""
        return self._model

    @property
    def processor(self):
        """The loaded (or given) processor; None until it is loaded."""
        return self._processor

    @property
    def requested_revision(self) -> str:
        """The revision as configured (``"main"`` for a hub id when none was given)."""
        return self.revision if self.revision is not None else "main"

    def resolved_revision(self) -> str:
        """What keys the answers: the content digest (local folder), the hub commit, or the name.

        Computed once per backend (hashing a large local model takes a while the first time;
        :func:`file_sha256` remembers the digests across runs). A hub ref is resolved from the
        local cache; only when it is not there, and the hub is not in offline mode, is the hub
        asked (:func:`fetch_hub_revision`: one small download, before any answer is keyed, so
        the first run keys its answers by the same commit as the later ones). If that fails too,
        the name keys the answers, with a warning. A built model (:meth:`from_model`): the
        given revision, else :func:`built_model_revision`.
        """
        if self._resolved is not None:
            return self._resolved
        if self._built:
            if self._model is None:
                raise BackendError(f"the built MLLM {self.model_id!r} was closed")
            resolved = built_model_revision(self._model, self._processor)
        elif self.revision is not None and self.is_local:
            resolved = self.revision  # given explicitly (the demo backend): taken as is
        elif self.is_local:
            folder = Path(self.model_path).expanduser()
            if not folder.is_dir():
                raise BackendError(
                    f"cannot use the MLLM {self.model_id!r}: the local folder {self.model_path!r} does not exist; "
                    "`mllm.backends.transformers.model` must be a folder written by save_pretrained, or a hub id"
                )
            resolved = local_model_revision(folder)
        else:
            resolved = self._resolve_hub_ref()
        self._resolved = resolved
        return resolved

    def _resolve_hub_ref(self) -> str:
        """The commit of the hub ref (local cache, else the hub), or the ref name with a warning."""
        repo, ref = self.model_path, self.requested_revision
        commit = resolve_hub_revision(repo, ref)
        if commit is not None:
            return commit
        if hub_offline():
            why = "and the hub is not asked in offline mode (HF_HUB_OFFLINE)"
        else:
            try:
                commit = fetch_hub_revision(repo, ref)
            except Exception as err:  # offline, no network, unknown repo or ref, gated, ...
                why = f"and asking the hub failed ({type(err).__name__}: {_one_line(err, 200)})"
            else:
                log.info("MLLM %r: revision %r resolved on the hub to commit %s", repo, ref, commit)
                return commit
        log.warning(
            "MLLM %r: revision %r is not in the local Hugging Face cache (%s) %s, so answers are "
            "keyed by the name %r, which can move; pin a commit (mllm.backends.transformers.revision: <40-hex hash>)",
            repo,
            ref,
            hub_cache_dir(),
            why,
            ref,
        )
        return ref

    def identity(self) -> dict:
        """``{backend, model_id, revision, settings}``: everything that keys the answers.

        ``settings``: the dtype; with ``processor_kwargs`` also those and the image-token count
        the loaded processor gives for each of :data:`PROBE_SIZES` (``image_tokens``; loading
        the processor, not the weights, and checking the settings were applied).
        """
        settings: dict = {"dtype": self.dtype}
        if self.processor_kwargs:
            settings["processor_kwargs"] = dict(self.processor_kwargs)
            self._load_processor()
            settings["image_tokens"] = dict(self._image_tokens or {})
        return {
            "backend": self.name,
            "model_id": self.model_id,
            "revision": self.resolved_revision(),
            "settings": settings,
        }

    # -- loading ------------------------------------------------------------------------------
    def check(self) -> None:
        """Load the model and processor now; :class:`BackendError` if that is impossible."""
        self._load()

    def _load_error(self, err: BaseException) -> BackendError:
        if self.is_local:
            return BackendError(
                f"cannot load the MLLM {self.model_id!r} from the local folder {self.model_path!r} with "
                f"transformers: {type(err).__name__}: {_one_line(err)}. `mllm.backends.transformers.model` must be a folder "
                "written by save_pretrained (config, weights, processor and tokenizer files), or a hub id"
            )
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        where = f"hub cache {hub_cache_dir()}, HF_HOME={os.environ.get('HF_HOME') or '(unset)'}" + (
            ", offline (HF_HUB_OFFLINE is set)" if offline else ""
        )
        return BackendError(
            f"cannot load the MLLM {self.model_id!r} from the Hugging Face hub (repo {self.model_path!r}, "
            f"revision {self.requested_revision!r}; {where}) with transformers: {type(err).__name__}: "
            f"{_one_line(err)}. Without network access, download it where there is some "
            f"(`hf download {self.model_path} --revision {self.requested_revision} --local-dir DIR`), "
            "copy DIR here and point the setting at that local folder (`mllm.backends.transformers.model: /path/to/folder`)"
        )

    def _source(self) -> tuple[str, dict]:
        """(what ``from_pretrained`` reads, its keyword arguments): the local folder, or the hub
        repo at exactly the commit that keys the answers."""
        model = self.model_path
        if self.is_local:
            folder = Path(model).expanduser()
            if not folder.is_dir():
                raise BackendError(
                    f"cannot load the MLLM {self.model_id!r}: the local folder {model!r} does not exist; "
                    "`mllm.backends.transformers.model` must be a folder written by save_pretrained, or a hub id"
                )
            return str(folder), {}
        return model, {"revision": self.resolved_revision(), "cache_dir": str(hub_cache_dir())}

    def _prepare_processor(self, processor):
        if getattr(processor, "chat_template", None) is None:
            raise BackendError(
                f"the processor of {self.model_id!r} has no chat template; the transformers backend needs one"
            )
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        return processor

    def _load_processor(self):
        """The processor (loaded once), with ``processor_kwargs`` applied and checked."""
        if self._processor is not None:
            return self._processor
        if self._built:
            raise BackendError(f"the built MLLM {self.model_id!r} was closed")
        from transformers import AutoProcessor

        source, kwargs = self._source()
        try:
            processor = AutoProcessor.from_pretrained(source, **kwargs, **self.processor_kwargs)
        except Exception as err:  # OSError (offline, missing files), ValueError
            raise self._load_error(err) from err
        processor = self._prepare_processor(processor)
        if self.processor_kwargs:
            self._image_tokens = check_processor_settings(
                processor,
                self.processor_kwargs,
                lambda: AutoProcessor.from_pretrained(source, **kwargs),
                f"mllm.backends.{self.name}.processor_kwargs",
            )
        self._processor = processor
        return processor

    def _load(self):
        if self._model is not None:
            return self._model, self._processor
        if self._built:
            raise BackendError(f"the built MLLM {self.model_id!r} was closed")
        from transformers import AutoModelForImageTextToText

        try:
            device = resolve_device(self.device, f"mllm.backends.{self.name}.device")
        except ValueError as err:
            raise BackendError(str(err)) from err
        processor = self._load_processor()
        source, kwargs = self._source()
        try:
            # straight onto the device in the dtype: no full copy in host memory first
            net = AutoModelForImageTextToText.from_pretrained(
                source, **kwargs, dtype=_torch_dtype(self.dtype), device_map={"": device}
            )
        except Exception as err:  # OSError (missing files), ValueError (unknown architecture)
            raise self._load_error(err) from err
        if not self.is_local and not _COMMIT.fullmatch(self.resolved_revision()):
            commit = getattr(net.config, "_commit_hash", None)
            log.warning(
                "MLLM %r: loaded revision %r%s; answers are keyed by the name %r, pin the commit "
                "(mllm.backends.transformers.revision: %s) for reproducible caches",
                self.model_path,
                self.requested_revision,
                f" = commit {commit}" if commit else "",
                self.resolved_revision(),
                commit or "<40-hex hash>",
            )
        self._model = net.eval()
        return self._model, processor

    # -- generation ---------------------------------------------------------------------------
    def _conversation(self, query: Query, prompt: str, settings: Mapping):
        """(chat-template text, image or None) for one query."""
        if query.kind == "ens":
            image = load_image(query.image, settings.get("image_size"))
        else:
            size = settings.get("blank_image_size")
            image = blank_image(size) if size is not None else None
        content = ([{"type": "image"}] if image is not None else []) + [
            {"type": "text", "text": prompt}
        ]
        text = self._processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        return text, image

    def generate(
        self, queries: Sequence[Query], prompts: Sequence[str], settings: Mapping
    ) -> list[str | Exception]:
        """Raw texts (or per-query exceptions) for a batch of queries of one kind."""
        if len(queries) != len(prompts):
            raise ValueError(f"got {len(queries)} queries but {len(prompts)} prompts")
        if not queries:
            return []
        kinds = {q.kind for q in queries}
        if len(kinds) != 1:
            raise ValueError(f"a batch must hold queries of one kind, got {sorted(kinds)}")
        import torch

        from ants.images import failure_reason

        net, processor = self._load()
        results: list[str | Exception] = [RuntimeError("not generated")] * len(queries)
        texts, images, rows = [], [], []
        for i, (query, prompt) in enumerate(zip(queries, prompts, strict=True)):
            try:
                text, image = self._conversation(query, prompt, settings)
            except Exception as err:  # unreadable image: this query fails, the others go on
                results[i] = RuntimeError(
                    f"cannot read image {query.image!r}: {failure_reason(err)}"
                )
                continue
            texts.append(text)
            images.append(image)
            rows.append(i)
        if not rows:
            return results
        with_images = [im is not None for im in images]
        if any(with_images) and not all(with_images):
            raise ValueError("a batch must be all with images or all text-only")
        try:
            inputs = processor(
                text=texts,
                images=images if all(with_images) else None,
                padding=True,
                return_tensors="pt",
            )
            inputs = inputs.to(net.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(net.dtype)
            input_length = int(inputs["input_ids"].shape[1])
            tokenizer = getattr(processor, "tokenizer", processor)
            pad_id = (
                tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else tokenizer.eos_token_id
            )
            kwargs = {}
            if self.logits_processor_factory is not None:
                from transformers import LogitsProcessorList

                kind = queries[0].kind
                kwargs["logits_processor"] = LogitsProcessorList(
                    self.logits_processor_factory(kind, input_length, settings)
                )
            with torch.inference_mode():
                out = net.generate(
                    **inputs,
                    max_new_tokens=int(settings["max_new_tokens"]),
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=pad_id,
                    **kwargs,
                )
            decoded = processor.batch_decode(out[:, input_length:], skip_special_tokens=True)
        except Exception as err:  # the whole batch failed (e.g. out of memory)
            for i in rows:
                results[i] = RuntimeError(f"generation failed: {type(err).__name__}: {err}")
            return results
        for i, text in zip(rows, decoded, strict=True):
            results[i] = text.strip()
        return results

    def close(self) -> None:
        """Drop the model (frees its memory)."""
        self._model = None
        self._processor = None


def from_config(config: Mapping) -> TransformersBackend:
    """Build from the ``mllm`` config section (``backend: transformers``)."""
    if "model" not in config:
        raise ValueError(
            "mllm.backends.transformers.model: required for backend 'transformers' (a hub id or a local folder)"
        )
    revision = config.get("revision")
    return TransformersBackend(
        str(config["model"]),
        revision=None if revision is None else str(revision),
        model_id=config.get("model_id"),
        device=str(config.get("device", "auto")),
        dtype=str(config.get("dtype", "fp32")),
        processor_kwargs=config.get("processor_kwargs"),
    )
