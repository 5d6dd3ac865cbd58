"""The paper's architectures at their real sizes, with random weights (nothing is downloaded):
image embedding and MLLM answering at real batch sizes, through the project's own code paths.

* ``vit_b16``: open_clip ViT-B-16 (the paper's backbone), built by ``ants.encoders.load_clip``
  with ``pretrained=None`` (random weights from the seed, the model config and preprocessing
  of ``ViT-B-16``), encoding generated 320 x 240 JPEG files with ``ClipEncoder.encode_images``
  (the embed_images stage: DataLoader, resize 224 + center crop, forward, L2 norm).
* ``qwen2vl_2b``: Qwen2-VL-2B-Instruct's shape (transformers ``Qwen2VLConfig``: text hidden
  1536, 28 layers, 12 heads, 2 KV heads, MLP 8960, vocab 151,936, M-RoPE sections 16/24/24,
  tied embeddings; vision depth 32, embed_dim 1280, 16 heads, patch 14, merge 2) with the
  authors' processor setting (size: shortest_edge 200,704 and longest_edge 1,003,520 pixels, i.e.
  256 to 1,280 image tokens) and the qwen2vl prompts
  and generation settings (ENS: 56 x 56 images, 10 new tokens; VSNL: 28 x 28 black image,
  50 new tokens).
* ``llava_7b``: LLaVA-1.5-7B's shape (CLIP ViT-L/14-336 vision tower: hidden 1024, 24 layers,
  MLP 4096, 336 px, 576 image tokens, features of layer -2; 2-layer GELU projector; Llama-2-7B:
  hidden 4096, 32 layers, 32 heads, MLP 11008, vocab 32,064) with the llava prompts (ENS:
  30 new tokens; VSNL: 100 new tokens).

Answering goes through ``ants.mllm.answering.CachedAnswerer`` (prompts, image hashing, batching,
parsing; no cache) and ``ants.mllm.hf.TransformersBackend.generate`` (chat template, processor,
left padding, greedy ``generate``, decoding). The backend is handed the model built in memory
(``TransformersBackend.from_model``) instead of loading a folder (writing 15 GB of random weights
to disk to read them back would measure the disk; ``gpu_check.py`` does that, as a user would). The tokenizer is the offline demo's word-level one (the real ones are on the
hub); its ids are a subset of the real vocabulary, and decoding is restricted to them and never
stops early, so every answer costs the full ``max_new_tokens``: an upper bound of the real cost.

Prints, per model: parameters, build time, images/s or answers/s per query kind, and peak memory
(RSS of this process on CPU; ``torch.cuda.max_memory_allocated`` on a GPU). Models that cannot
fit (LLaVA-7B on a CPU: 28 GB in fp32) are built on the meta device for their parameter count
only, with the reason printed.

    python benchmarks/bench_architectures.py                       # CPU: what fits
    python benchmarks/bench_architectures.py --device cuda --dtype bf16 --models vit_b16,qwen2vl_2b,llava_7b
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

MODELS = ("vit_b16", "qwen2vl_2b", "llava_7b")
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
CLASSES = (
    "goldfish",
    "tabby cat",
    "golden retriever",
    "school bus",
    "espresso",
    "volcano",
    "lighthouse",
    "red fox",
)


# -- measuring -------------------------------------------------------------------------------------


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class Peak:
    """Peak memory over a block: GPU allocator peak on CUDA, process RSS high-water mark on CPU
    (which never goes down, so it includes everything built before)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.gb = torch.cuda.max_memory_allocated(self.device) / 2**30
            self.what = "GPU max allocated"
        else:
            self.gb = peak_rss_gb()
            self.what = "process peak RSS"

    def __str__(self) -> str:
        return f"{self.gb:.2f} GB ({self.what})"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fits(n: int, dtype: str, device: torch.device, headroom: float = 1.6) -> tuple[bool, str]:
    """Whether ``n`` parameters in ``dtype`` (times ``headroom`` for activations) fit the device."""
    need = n * BYTES[dtype] * headroom
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        have, where = free, "free GPU memory"
    else:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        have, where = have, "available RAM"
    return (
        need < have,
        f"needs ~{need / 2**30:.0f} GB ({n / 1e9:.2f} B params in {dtype} x {headroom}), {where} {have / 2**30:.0f} GB",
    )


# -- inputs ----------------------------------------------------------------------------------------


def make_images(folder: Path, n: int, size=(320, 240), seed: int = 0) -> list[str]:
    """``n`` distinct JPEG files of ``size`` (smooth gradients plus noise, like photos compress)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    paths = []
    for i in range(n):
        base = rng.uniform(0, 255, size=3)
        slope = rng.uniform(-0.5, 0.5, size=(2, 3))
        img = (
            base
            + xx[..., None] * slope[0]
            + yy[..., None] * slope[1]
            + rng.normal(0, 12, size=(h, w, 3))
        )
        path = folder / f"img_{i:04d}.jpg"
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


# -- ViT-B/16 --------------------------------------------------------------------------------------


def bench_vit_b16(args, device: torch.device, images: list[str]) -> None:
    from ants.encoders import ClipSpec, load_clip

    precision = args.dtype
    if precision == "fp16" and device.type == "cpu":
        print("vit_b16: fp16 on CPU is refused by ants.encoders (use bf16 or fp32); running fp32")
        precision = "fp32"
    t0 = time.perf_counter()
    clip = load_clip(ClipSpec(model="ViT-B-16", seed=0), device=str(device), precision=precision)
    build = time.perf_counter() - t0
    print(
        f"vit_b16: open_clip ViT-B-16, {n_params(clip.model) / 1e6:.1f} M params, random weights, "
        f"{precision} on {device}, built in {build:.1f} s, embed dim {clip.dim}"
    )
    for batch in args.image_batch_sizes:
        n = min(len(images), max(batch * args.image_batches, batch))
        clip.encode_images(
            images[: min(batch, 8)], batch_size=batch, num_workers=args.num_workers, progress=False
        )  # warm-up
        sync(device)
        with Peak(device) as peak:
            t0 = time.perf_counter()
            out = clip.encode_images(
                images[:n], batch_size=batch, num_workers=args.num_workers, progress=False
            )
            sync(device)
            dt = time.perf_counter() - t0
        assert out.features.shape == (n, clip.dim) and np.allclose(
            np.linalg.norm(out.features, axis=1), 1, atol=1e-3
        )
        print(
            f"  embed_images  batch {batch:4d}: {n} images in {dt:6.2f} s = {n / dt:8.1f} images/s, "
            f"peak {peak}"
        )
    del clip
    gc.collect()


# -- MLLMs -----------------------------------------------------------------------------------------


#: Qwen2-VL-2B-Instruct's own image-size range on the hub (preprocessor_config.json: min_pixels
#: 3136, max_pixels 12845056), and the authors' setting (256 to 1280 tokens of 28 x 28 pixels) as
#: the processor setting a user gives (mllm.backends.transformers.processor_kwargs)
QWEN_HUB_SIZE = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16384}
AUTHORS_PROCESSOR_KWARGS = {
    "size": {"shortest_edge": 256 * 28 * 28, "longest_edge": 1280 * 28 * 28}
}


def qwen2vl_2b(tokenizer, size=None):
    """Processor, model class and config of Qwen2-VL-2B-Instruct's shape; the processor's image
    size range is ``size`` (default: the hub's, :data:`QWEN_HUB_SIZE`)."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    from ants.mllm.demo import QWEN_CHAT_TEMPLATE

    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=dict(size or QWEN_HUB_SIZE)),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": 151936,
            "hidden_size": 1536,
            "intermediate_size": 8960,
            "num_hidden_layers": 28,
            "num_attention_heads": 12,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1000000.0,
                "mrope_section": [16, 24, 24],
            },
            "pad_token_id": 0,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
        vision_config={
            "depth": 32,
            "embed_dim": 1280,
            "hidden_size": 1536,
            "hidden_act": "quick_gelu",
            "mlp_ratio": 4,
            "num_heads": 16,
            "in_channels": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids("<image>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )
    return processor, Qwen2VLForConditionalGeneration, config, "qwen2vl"


def llava_7b(tokenizer):
    """Processor, model class and config of LLaVA-1.5-7B's shape (llava-hf/llava-1.5-7b-hf)."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    from ants.mllm.demo import llava_processor

    processor = llava_processor(tokenizer, 336)  # CLIP ViT-L/14-336: 576 image tokens
    vision = CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        projection_dim=768,
        hidden_act="quick_gelu",
    )
    text = LlamaConfig(
        vocab_size=32064,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=576,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    return processor, LlavaForConditionalGeneration, config, "llava"


MLLMS = {"qwen2vl_2b": qwen2vl_2b, "llava_7b": llava_7b}
TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def build(cls, config, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    """``cls(config)`` with random weights created directly on ``device`` in ``dtype``."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        torch.manual_seed(0)
        with torch.device(device):
            model = cls(config)
    finally:
        torch.set_default_dtype(old)
    return model.eval()


class NoEarlyStop:
    """A ``logits_processor_factory`` for TransformersBackend: the next token is the greedy one
    among the tokenizer's own non-special ids, so every answer runs to ``max_new_tokens``."""

    def __init__(self, tokenizer, vocab_size: int):
        special = set(tokenizer.all_special_ids)
        self.allowed = torch.tensor(
            [i for i in range(len(tokenizer)) if i not in special and i < vocab_size]
        )

    def __call__(self, kind, input_length, settings):
        from transformers import LogitsProcessor

        allowed = self.allowed

        class Mask(LogitsProcessor):
            def __call__(self, input_ids, scores):
                keep = torch.full_like(scores, float("-inf"))
                idx = allowed.to(scores.device)
                keep[:, idx] = scores[:, idx]
                return keep

        return [Mask()]


def bench_mllm(name: str, args, device: torch.device, images: list[str]) -> None:
    from ants.mllm.answering import CachedAnswerer
    from ants.mllm.base import Query
    from ants.mllm.demo import _build_tokenizer
    from ants.mllm.hf import TransformersBackend
    from ants.mllm.prompts import Prompting

    tokenizer = _build_tokenizer()
    if name == "qwen2vl_2b":  # the authors' setting, applied to the processor built here
        processor, cls, config, family = qwen2vl_2b(tokenizer, AUTHORS_PROCESSOR_KWARGS["size"])
    else:
        processor, cls, config, family = MLLMS[name](tokenizer)
    with torch.device("meta"):
        count = n_params(cls(config))
    ok, why = fits(count, args.dtype, device)
    dtype = args.dtype
    if device.type == "cpu" and dtype == "fp16":
        print(f"{name}: fp16 matmuls on CPU are slow or missing; running bf16")
        dtype = "bf16"
    if not ok:
        print(
            f"{name}: {count / 1e9:.2f} B params (counted on the meta device); SKIPPED on {device}: {why}"
        )
        return
    if device.type == "cpu" and name == "llava_7b" and not args.force:
        print(
            f"{name}: {count / 1e9:.2f} B params (meta device); SKIPPED on CPU: answering at 30-100 new tokens "
            f"would take hours on {os.cpu_count()} cores (--force to run it anyway)"
        )
        return
    t0 = time.perf_counter()
    net = build(cls, config, TORCH_DTYPES[dtype], device)
    net.generation_config.pad_token_id = 0
    net.generation_config.eos_token_id = 2
    build_s = time.perf_counter() - t0
    print(
        f"{name}: {count / 1e9:.3f} B params, random weights, {dtype} on {device}, built in {build_s:.1f} s"
    )

    backend = TransformersBackend.from_model(  # built in memory (see the module docstring)
        net,
        processor,
        model_id=f"bench-{name}-random",
        revision="random-seed0",
        logits_processor_factory=NoEarlyStop(tokenizer, config.get_text_config().vocab_size),
    )
    prompting = Prompting(family=family)
    for kind in ("ens", "vsnl"):
        settings = prompting.settings(kind)
        for batch in args.answer_batch_sizes:
            n = batch * args.answer_batches
            queries = [
                Query("ens", CLASSES[i % len(CLASSES)], image=images[i % len(images)])
                if kind == "ens"
                else Query(
                    "vsnl", f"{CLASSES[i % len(CLASSES)]} {i}"
                )  # distinct, so none is deduplicated
                for i in range(n)
            ]
            answerer = CachedAnswerer(backend, cache=None, prompting=prompting, batch_size=batch)
            answerer(queries[:1])  # warm-up (first kernels, lazy init)
            answerer = CachedAnswerer(backend, cache=None, prompting=prompting, batch_size=batch)
            with Peak(device) as peak:
                t0 = time.perf_counter()
                answers = answerer(queries)
                sync(device)
                dt = time.perf_counter() - t0
            failed = [a.reason for a in answers if a.status == "failed"]
            if failed:
                print(f"  {kind} batch {batch}: FAILED: {failed[0]}")
                break
            tokens = n * settings["max_new_tokens"]
            print(
                f"  answer {kind:4s} batch {batch:3d}: {n} answers x {settings['max_new_tokens']} new tokens "
                f"in {dt:7.1f} s = {n / dt:7.3f} answers/s ({tokens / dt:7.1f} tokens/s), peak {peak}"
            )
    backend.close()
    del net, backend
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    ap.add_argument(
        "--dtype", default=None, choices=sorted(BYTES), help="default: fp32 on CPU, bf16 on a GPU"
    )
    ap.add_argument(
        "--models",
        default=None,
        help=f"comma-separated from {','.join(MODELS)} (default: all; on CPU llava_7b is counted only)",
    )
    ap.add_argument("--image-batch-sizes", default=None, help="default: 64,256 (GPU) / 64 (CPU)")
    ap.add_argument(
        "--image-batches",
        type=int,
        default=None,
        help="batches timed per size (default 4 GPU, 1 CPU)",
    )
    ap.add_argument("--answer-batch-sizes", default=None, help="default: 16,64 (GPU) / 4 (CPU)")
    ap.add_argument(
        "--answer-batches",
        type=int,
        default=None,
        help="batches timed per size (default 2 GPU, 1 CPU)",
    )
    ap.add_argument(
        "--num-workers",
        type=int,
        default=None,
        help="image DataLoader workers (default min(8, cores))",
    )
    ap.add_argument("--force", action="store_true", help="run LLaVA-7B on a CPU too")
    args = ap.parse_args(argv)

    from ants.encoders import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as err:
        ap.error(str(err))
    gpu = device.type == "cuda"
    args.dtype = args.dtype or ("bf16" if gpu else "fp32")
    models = [m.strip() for m in (args.models or ",".join(MODELS)).split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"--models: unknown model {bad[0]!r}; valid: {','.join(MODELS)}")

    def sizes(text, default):
        try:
            return [int(x) for x in (text or default).split(",")]
        except ValueError:
            ap.error(f"batch sizes must be comma-separated integers, got {text!r}")

    args.image_batch_sizes = sizes(args.image_batch_sizes, "64,256" if gpu else "64")
    args.answer_batch_sizes = sizes(args.answer_batch_sizes, "16,64" if gpu else "4")
    args.image_batches = args.image_batches or (4 if gpu else 1)
    args.answer_batches = args.answer_batches or (2 if gpu else 1)
    args.num_workers = min(8, os.cpu_count() or 1) if args.num_workers is None else args.num_workers

    where = (
        torch.cuda.get_device_name(device)
        if gpu
        else f"CPU, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
    )
    print(
        f"bench_architectures: {where}; torch {torch.__version__}; dtype {args.dtype}; models {','.join(models)}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-arch-") as tmp:
        n_images = max(
            max(args.image_batch_sizes) * args.image_batches,
            max(args.answer_batch_sizes) * args.answer_batches,
        )
        images = make_images(Path(tmp) / "images", n_images)
        print(f"inputs: {n_images} generated 320x240 JPEG files")
        for name in models:
            t0 = time.perf_counter()
            if name == "vit_b16":
                bench_vit_b16(args, device, images)
            else:
                bench_mllm(name, args, device, images)
            print(f"  ({name}: {time.perf_counter() - t0:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
