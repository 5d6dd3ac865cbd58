"""The ``transformers`` MLLM backend: any ``AutoModelForImageTextToText`` with a chat template.

LLaVA-1.5 (``llava-hf/llava-1.5-7b-hf``), Qwen2-VL (``Qwen/Qwen2-VL-2B-Instruct``) and the
offline demo model (:mod:`ants.mllm.demo`) all run through :class:`TransformersBackend`.

* ``model`` is a hub id or a local folder (``save_pretrained`` layout); ``revision`` pins a hub
  commit (it is part of the cache key, so pin one for reproducible caches: ``"main"`` moves).
* ``device`` (``auto`` = cuda when available), ``dtype`` (fp32 / fp16 / bf16; part of the
  cache key), ``processor_kwargs`` passed to ``AutoProcessor.from_pretrained`` (the authors
  load Qwen2-VL with ``{min_pixels: 200704, max_pixels: 1003520}``, i.e. 256 and 1280 x 28 x 28;
  part of the cache key).
* Generation is greedy (``do_sample=False, num_beams=1``), in batches with LEFT padding, so a
  batch gives the same texts as one query at a time (tested on the demo model).
* Each conversation is one user turn: ``[image, text]`` (the authors' order). ENS queries carry
  their image, resized first when the settings say ``image_size``; VSNL queries carry a black
  ``blank_image_size`` image (the authors' choice) or no image at all when it is ``None``.
* A batch must hold queries of one kind (the generation settings apply to all of them).
* An image that cannot be read fails that query only; an error inside ``generate`` fails the
  batch; both become ``Answer(status="failed")`` upstream and the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ants.mllm.base import BackendError, Query

DTYPES = ("fp32", "fp16", "bf16")
DEVICES_HELP = "'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'"

# (kind, input_length, settings) -> list of transformers LogitsProcessor
LogitsProcessorFactory = Callable[[str, int, Mapping], list]


def _torch_dtype(dtype: str):
    import torch

    table = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ValueError(f"dtype: unknown value {dtype!r}; valid values: {', '.join(DTYPES)}")
    return table[dtype]


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def looks_like_path(model: str) -> bool:
    """True for ``./x``, ``/x``, ``~/x`` or anything that exists on disk (else: a hub id)."""
    return model.startswith((".", "/", "~")) or Path(model).exists()


def load_image(path: str, size: Sequence[int] | None = None):
    """Open an image as RGB, optionally resized to ``(width, height)`` with bilinear filtering."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
    if size is not None:
        im = im.resize((int(size[0]), int(size[1])), Image.BILINEAR)
    return im


def blank_image(size: Sequence[int]):
    """A black RGB image (the authors' placeholder for text-only VSNL queries: 28 x 28)."""
    from PIL import Image

    return Image.new("RGB", (int(size[0]), int(size[1])))


class TransformersBackend:
    """Greedy, batched, left-padded generation with a ``transformers`` image-text-to-text model.

    The model is loaded on :meth:`check` or on the first :meth:`generate`, so answers served
    from the cache never load it.
    """

    def __init__(
        self,
        model: str,
        *,
        revision: str = "main",
        model_id: str | None = None,
        device: str = "auto",
        dtype: str = "fp32",
        processor_kwargs: Mapping | None = None,
        name: str = "transformers",
        logits_processor_factory: LogitsProcessorFactory | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"model: expected a hub id or a local folder, got {model!r}")
        _torch_dtype(dtype)  # validates
        self.model_path = model
        self.model_id = model_id or model
        self.revision = revision
        self.device = device
        self.dtype = dtype
        self.processor_kwargs = dict(processor_kwargs or {})
        self.name = name
        self.logits_processor_factory = logits_processor_factory
        self._model = None
        self._processor = None

    def __repr__(self) -> str:
        return f"TransformersBackend(model={self.model_path!r}, revision={self.revision!r}, device={self.device!r}, dtype={self.dtype!r})"

    def identity(self) -> dict:
        settings: dict = {"dtype": self.dtype}
        if self.processor_kwargs:
            settings["processor_kwargs"] = dict(self.processor_kwargs)
        return {
            "backend": self.name,
            "model_id": self.model_id,
            "revision": self.revision,
            "settings": settings,
        }

    # -- loading ------------------------------------------------------------------------------
    def check(self) -> None:
        """Load the model and processor now; :class:`BackendError` if that is impossible."""
        self._load()

    def _load(self):
        if self._model is not None:
            return self._model, self._processor
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = self.model_path
        is_path = looks_like_path(model)
        if is_path and not Path(model).expanduser().is_dir():
            raise BackendError(
                f"cannot load the MLLM {self.model_id!r}: the local folder {model!r} does not exist; "
                "give a hub id or a folder written by save_pretrained"
            )
        source = str(Path(model).expanduser()) if is_path else model
        revision = None if is_path else self.revision
        try:
            processor = AutoProcessor.from_pretrained(
                source, revision=revision, **self.processor_kwargs
            )
            net = AutoModelForImageTextToText.from_pretrained(
                source, revision=revision, dtype=_torch_dtype(self.dtype)
            )
        except (
            Exception
        ) as err:  # OSError (offline, missing files), ValueError (unknown architecture), ...
            hint = (
                ""
                if is_path
                else (
                    " If this machine has no network access, download the model elsewhere "
                    f"(e.g. `hf download {model} --local-dir DIR`) and set the backend's `model` to that local folder."
                )
            )
            raise BackendError(
                f"cannot load the MLLM {self.model_id!r} (revision {self.revision!r}) with transformers: "
                f"{type(err).__name__}: {str(err).strip().rstrip('.')}.{hint}"
            ) from err
        if getattr(processor, "chat_template", None) is None:
            raise BackendError(
                f"the processor of {self.model_id!r} has no chat template; the transformers backend needs one"
            )
        device = _resolve_device(self.device)
        try:
            net = net.to(device).eval()
        except Exception as err:
            raise BackendError(
                f"cannot move the MLLM {self.model_id!r} to device {device!r}: {err}; valid devices: {DEVICES_HELP}"
            ) from err
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        self._model, self._processor = net, processor
        return net, processor

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

        net, processor = self._load()
        results: list[str | Exception] = [RuntimeError("not generated")] * len(queries)
        texts, images, rows = [], [], []
        for i, (query, prompt) in enumerate(zip(queries, prompts, strict=True)):
            try:
                text, image = self._conversation(query, prompt, settings)
            except Exception as err:  # unreadable image: this query fails, the others go on
                results[i] = RuntimeError(
                    f"cannot read image {query.image!r}: {type(err).__name__}: {err}"
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
            "mllm.model: required for backend 'transformers' (a hub id or a local folder)"
        )
    return TransformersBackend(
        str(config["model"]),
        revision=str(config.get("revision", "main")),
        model_id=config.get("model_id"),
        device=str(config.get("device", "auto")),
        dtype=str(config.get("dtype", "fp32")),
        processor_kwargs=config.get("processor_kwargs"),
    )


CONFIG_KEYS = ("model", "revision", "model_id", "device", "dtype", "processor_kwargs")
