"""GPU check: the embedding stage and the MLLM backend on CUDA at the paper's model sizes, with
random weights and no network, in a few minutes on one GPU; and what it implies per image.

1. **Embedding** (what the ``embed_images`` stage runs: ``ants.encoders.load_clip`` +
   ``ClipEncoder.encode_images``): open_clip ViT-B/16 with random weights (the paper's backbone
   shape, 149.6 M parameters) at fp32, fp16 and bf16 over generated 320 x 240 JPEG files:
   images/s end to end (decode, resize + crop, DataLoader, forward, L2 norm) and model-only
   (``ClipEncoder.forward_images`` on a batch already on the GPU), and each precision's cosine
   to the fp32 features of the same images. Checks: every feature finite; fp16 cosines >= 0.999.
2. **MLLM answering**, as a user runs it: random weights of the published shapes
   (Qwen2-VL-2B-Instruct, 2.209 B parameters, bf16, with the authors' processor setting given as
   ``processor_kwargs``; LLaVA-1.5-7B, 7.063 B parameters, fp16) are built on the GPU and saved
   to a local folder (``save_pretrained``); a fresh process then loads each folder through
   ``ants.mllm.hf.TransformersBackend`` (straight onto the GPU in the dtype) and answers ENS and
   VSNL batches through ``CachedAnswerer`` with the family's prompts and generation settings.
   Figures: load time, host memory the load took (growth of the process's anonymous memory: the
   weights must not pass through host RAM), GPU memory of the weights, latency per batch,
   tokens/s and peak GPU memory per kind. The tokenizer is the offline demo's (the real ones
   are on the hub) and decoding never stops early, so every answer costs the full
   ``max_new_tokens``: an upper bound of the real cost. Checks: the model loads, every answer
   comes back, the GPU memory of the loaded weights matches their count x dtype.
3. **Cost per image** in the paper's MOS-4 setting (``configs/mos4.yaml``: ANTS, LLaVA-1.5-7B,
   ViT-B/16, streams of 50,000 ImageNet + 10,000 OOD images in batches of 256): one fp16 CLIP
   embedding per image plus the stream's MLLM queries spread over its images. ENS: at most
   ``ens_max_updates`` updates of more than ``ens_trigger_size`` images each (at most one batch
   more); VSNL: the near subset (``near_delta`` x 1,000 classes) at the first VSNL batch, at most
   that many again at each later one. Printed as the range these bounds give, beside the
   2.84 ms/image the ANTS authors give for their method's cost (as quoted in issue 20).

    make gpu-check                                   # on CUDA, the full sizes (no network)
    python benchmarks/gpu_check.py --small           # tiny models on the CPU (the test suite)
    python benchmarks/gpu_check.py --models llava_7b --workdir /scratch/me   # one model; where
                                                     # the 14 GB weights folder is written

Exit status 0 when every check passed, 1 otherwise; the last line is ``GPU_CHECK_JSON {...}``
with every figure. Disk: up to 14 GB of weights in ``--workdir`` (default: the temp folder),
removed afterwards.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_architectures import (  # noqa: E402 (a sibling script)
    AUTHORS_PROCESSOR_KWARGS,
    BYTES,
    CLASSES,
    TORCH_DTYPES,
    NoEarlyStop,
    build,
    llava_7b,
    make_images,
    n_params,
    qwen2vl_2b,
)

ROOT = Path(__file__).resolve().parents[1]
#: the per-image cost the ANTS authors give for their method (as quoted in issue 20)
AUTHORS_MS_PER_IMAGE = 2.84
PRECISIONS = ("fp32", "fp16", "bf16")
MIN_FP16_COSINE = 0.999
#: MOS-4 streams: ImageNet-1k val + one OOD set of about 10,000 images (Textures: 5,640)
MOS4_STREAM_IMAGES = 50_000 + 10_000
MOS4_ID_CLASSES = 1000


def anon_bytes() -> int:
    """This process's anonymous resident memory (Linux ``RssAnon``; 0 where there is none)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    found = re.search(r"RssAnon:\s+(\d+)", status)
    return int(found.group(1)) * 1024 if found else 0


class AnonPeak:
    """Peak growth of :func:`anon_bytes` over a block, sampled every millisecond."""

    def __enter__(self):
        self.base = anon_bytes()
        self.peak = self.base
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.is_set():
            self.peak = max(self.peak, anon_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, anon_bytes())
        self.growth_gb = (self.peak - self.base) / 2**30


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_gb(device: torch.device, fn) -> float | None:
    return fn(device) / 2**30 if device.type == "cuda" else None


def finite(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and math.isfinite(x))


# -- 1. embedding --------------------------------------------------------------------------------


def check_embedding(args, device: torch.device, images: list[str], report: dict) -> list[str]:
    from ants.encoders import ClipSpec, load_clip

    spec = ClipSpec.tiny(seed=0) if args.small else ClipSpec(model="ViT-B-16", seed=0)
    failures, features = [], {}
    for precision in PRECISIONS:
        if precision == "fp16" and device.type == "cpu":
            print("embed fp16: not run on the CPU (ants.encoders refuses fp16 there)")
            continue
        clip = load_clip(spec, device=str(device), precision=precision)
        batch = args.image_batch
        clip.encode_images(
            images[:batch], batch_size=batch, num_workers=args.num_workers, progress=False
        )  # warm-up: workers, kernels, autocast caches
        sync(device)
        t0 = time.perf_counter()
        out = clip.encode_images(
            images, batch_size=batch, num_workers=args.num_workers, progress=False
        )
        sync(device)
        end_to_end = len(images) / (time.perf_counter() - t0)
        from PIL import Image

        pixels = torch.stack(
            [clip.preprocess(Image.open(p).convert("RGB")) for p in images[:batch]]
        )
        pixels = pixels.to(device)
        clip.forward_images(pixels)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(args.model_reps):
            raw = clip.forward_images(pixels)
        sync(device)
        model_only = args.model_reps * batch / (time.perf_counter() - t0)
        feats = out.features
        features[precision] = feats
        all_finite = bool(np.isfinite(feats).all() and torch.isfinite(raw.float()).all())
        entry = {
            "model": spec.model,
            "params_m": n_params(clip.model) / 1e6,
            "end_to_end_images_per_s": end_to_end,
            "model_only_images_per_s": model_only,
            "finite": all_finite,
        }
        if precision != "fp32":
            cos = np.sum(feats.astype(np.float64) * features["fp32"], axis=1)
            entry.update(min_cosine_vs_fp32=float(cos.min()), mean_cosine_vs_fp32=float(cos.mean()))
        report["embedding"][precision] = entry
        cos_text = (
            f", cosine vs fp32 min {entry['min_cosine_vs_fp32']:.6f} mean {entry['mean_cosine_vs_fp32']:.6f}"
            if precision != "fp32"
            else ""
        )
        print(
            f"embed {precision}: {spec.model} ({entry['params_m']:.1f} M params) on {device}: "
            f"end to end {end_to_end:8.1f} images/s, model-only {model_only:8.1f} images/s "
            f"(batch {batch}){cos_text}, finite: {'yes' if all_finite else 'NO'}"
        )
        if not all_finite:
            failures.append(f"embed {precision}: non-finite features")
        if precision == "fp16" and entry["min_cosine_vs_fp32"] < MIN_FP16_COSINE:
            failures.append(
                f"embed fp16: min cosine vs fp32 {entry['min_cosine_vs_fp32']:.6f} < {MIN_FP16_COSINE}"
            )
        del clip, raw, pixels
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return failures


# -- 2. MLLM answering -----------------------------------------------------------------------------


def mllm_specs(args):
    """(name, builder(tokenizer) -> (processor, class, config, family), dtype, processor_kwargs)."""
    if args.small:
        from ants.mllm import demo

        def tiny(architecture):
            def builder(tokenizer):
                processor, cls, config = (
                    demo._llava if architecture == "llava" else demo._qwen2vl
                )(tokenizer)
                return processor, cls, config, architecture

            return builder

        # the dtypes of the full check (half precision generates on the CPU too, slowly)
        return [
            ("qwen2vl_tiny", tiny("qwen2vl"), "bf16", AUTHORS_PROCESSOR_KWARGS),
            ("llava_tiny", tiny("llava"), "fp16", None),
        ]
    chosen = {
        "qwen2vl_2b": (qwen2vl_2b, "bf16", AUTHORS_PROCESSOR_KWARGS),
        "llava_7b": (llava_7b, "fp16", None),
    }
    if args.depth is None:
        return [(name, *chosen[name]) for name in args.models]

    def shallow(builder):
        def build_shallow(tokenizer):
            processor, cls, config, family = builder(tokenizer)
            text = config.text_config
            text.num_hidden_layers = args.depth
            if getattr(text, "layer_types", None):  # Qwen2: one attention type per layer
                text.layer_types = text.layer_types[: args.depth]
            vision = config.vision_config
            if hasattr(vision, "depth"):  # Qwen2-VL
                vision.depth = args.depth
            else:  # LLaVA reads the features of the second-to-last layer
                vision.num_hidden_layers = max(2, args.depth)
            return processor, cls, config, family

        return build_shallow

    return [
        (f"{name}_depth{args.depth}", shallow(chosen[name][0]), *chosen[name][1:])
        for name in args.models
    ]


def build_and_save(name, builder, dtype, device, folder: Path) -> dict:
    """Random weights of the architecture built on ``device`` in ``dtype``, saved to ``folder``."""
    from ants.mllm.demo import _build_tokenizer

    tokenizer = _build_tokenizer()
    processor, cls, config, family = builder(tokenizer)
    t0 = time.perf_counter()
    net = build(cls, config, TORCH_DTYPES[dtype], device)
    net.generation_config.pad_token_id = 0
    net.generation_config.eos_token_id = 2
    sync(device)
    built_s = time.perf_counter() - t0
    count = n_params(net)
    t0 = time.perf_counter()
    net.save_pretrained(folder)
    processor.save_pretrained(folder)
    saved_s = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    del net
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {
        "name": name,
        "family": family,
        "params": count,
        "dtype": dtype,
        "build_s": built_s,
        "save_s": saved_s,
        "folder_gb": size / 2**30,
        "vocab_size": config.get_text_config().vocab_size,
    }


def answer_in_child(jobs: list[dict], args, device: torch.device) -> list[dict]:
    """Run :func:`load_and_answer` for each job in a fresh process (as an answer job would)."""
    spec = {
        "jobs": jobs,
        "device": str(device),
        "answer_batch": args.answer_batch,
        "answer_batches": args.answer_batches,
        "images": args.images_for_mllm,
        "max_new_tokens": args.max_new_tokens,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", f.name], capture_output=True, text=True
        )
    finally:
        os.unlink(f.name)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("CHILD_JSON ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"the answering process failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1][len("CHILD_JSON ") :])


def load_and_answer(spec: dict) -> list[dict]:
    """In the child: each folder loaded by TransformersBackend and asked ENS and VSNL batches."""
    device = torch.device(spec["device"])
    images, batch, batches = spec["images"], spec["answer_batch"], spec["answer_batches"]
    results = []
    for job in spec["jobs"]:
        try:
            results.append(
                _load_and_answer_one(job, device, images, batch, batches, spec["max_new_tokens"])
            )
        except Exception as err:  # noqa: BLE001 - reported by the parent as a failed check
            results.append({"name": job["name"], "error": f"{type(err).__name__}: {err}"})
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


def _load_and_answer_one(job, device, images, batch, batches, max_new_tokens) -> dict:
    """Load one folder as an answer job does, then time ENS and VSNL batches."""
    from ants.mllm.answering import CachedAnswerer
    from ants.mllm.base import Query
    from ants.mllm.demo import _build_tokenizer
    from ants.mllm.hf import TransformersBackend
    from ants.mllm.prompts import Prompting

    backend = TransformersBackend(
        job["folder"],
        model_id=f"gpu-check-{job['name']}",
        device=str(device),
        dtype=job["dtype"],
        processor_kwargs=job["processor_kwargs"],
        logits_processor_factory=NoEarlyStop(_build_tokenizer(), job["vocab_size"]),
    )
    result = {"name": job["name"]}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with AnonPeak() as host:
        t0 = time.perf_counter()
        backend.check()
        sync(device)
        result["load_s"] = time.perf_counter() - t0
    result["load_host_anon_gb"] = host.growth_gb
    result["weights_gpu_gb"] = gpu_gb(device, torch.cuda.memory_allocated)
    result["load_peak_gpu_gb"] = gpu_gb(device, torch.cuda.max_memory_allocated)
    result["loaded_dtypes"] = sorted({str(p.dtype) for p in backend.model.parameters()})
    result["loaded_devices"] = sorted({str(p.device) for p in backend.model.parameters()})
    result["image_tokens"] = backend.identity()["settings"].get("image_tokens")
    overrides = (
        {k: {"max_new_tokens": max_new_tokens} for k in ("ens", "vsnl")} if max_new_tokens else {}
    )
    prompting = Prompting(family=job["family"], generation=overrides)
    for kind in ("ens", "vsnl"):
        settings = prompting.settings(kind)
        n = batch * batches
        queries = [
            Query("ens", CLASSES[i % len(CLASSES)], image=images[i % len(images)])
            if kind == "ens"
            else Query("vsnl", f"{CLASSES[i % len(CLASSES)]} {i}")
            for i in range(n)
        ]
        CachedAnswerer(backend, cache=None, prompting=prompting, batch_size=batch)(
            queries[:batch]
        )  # warm-up
        answerer = CachedAnswerer(backend, cache=None, prompting=prompting, batch_size=batch)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        t0 = time.perf_counter()
        answers = answerer(queries)
        sync(device)
        seconds = time.perf_counter() - t0
        failed = [a.reason for a in answers if a.status == "failed"]
        tokens = n * int(settings["max_new_tokens"])
        result[kind] = {
            "batch": batch,
            "answers": n,
            "max_new_tokens": int(settings["max_new_tokens"]),
            "s_per_batch": seconds / batches,
            "s_per_query": seconds / n,
            "tokens_per_s": tokens / seconds,
            "failed": len(failed),
            "first_failure": failed[0] if failed else None,
            "peak_gpu_gb": gpu_gb(device, torch.cuda.max_memory_allocated),
        }
    backend.close()
    return result


def check_mllms(args, device: torch.device, report: dict) -> list[str]:
    failures, jobs = [], []
    folders = []
    try:
        for name, builder, dtype, processor_kwargs in mllm_specs(args):
            folder = Path(tempfile.mkdtemp(prefix=f"gpu-check-{name}-", dir=args.workdir))
            folders.append(folder)
            built = build_and_save(name, builder, dtype, device, folder)
            print(
                f"mllm {name}: {built['params'] / 1e9:.3f} B params, random weights, {dtype}: built on {device} "
                f"in {built['build_s']:.1f} s, saved ({built['folder_gb']:.2f} GB) in {built['save_s']:.1f} s"
            )
            jobs.append({**built, "folder": str(folder), "processor_kwargs": processor_kwargs})
        results = answer_in_child(jobs, args, device)
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
    for job, result in zip(jobs, results, strict=True):
        name, dtype = job["name"], job["dtype"]
        if "error" in result:
            failures.append(f"mllm {name}: {result['error']}")
            print(f"mllm {name}: FAILED: {result['error']}")
            continue
        result.update({k: v for k, v in job.items() if k not in ("folder", "processor_kwargs")})
        report["mllm"][name] = result
        weights_gb = job["params"] * BYTES[dtype] / 2**30
        gpu = (
            f", GPU {result['weights_gpu_gb']:.2f} GB for the weights"
            if result["weights_gpu_gb"] is not None
            else ""
        )
        print(
            f"mllm {name}: loaded from its folder in {result['load_s']:.1f} s, host memory "
            f"+{result['load_host_anon_gb']:.2f} GB (the weights are {weights_gb:.2f} GB){gpu}; loaded as "
            f"{','.join(result['loaded_dtypes'])} on {','.join(result['loaded_devices'])}; image tokens per "
            f"probe size {result['image_tokens']}"
        )
        for kind in ("ens", "vsnl"):
            r = result[kind]
            peak = f", peak GPU {r['peak_gpu_gb']:.2f} GB" if r["peak_gpu_gb"] is not None else ""
            print(
                f"  answer {kind:4s} batch {r['batch']:3d}: {r['s_per_batch']:7.3f} s per batch "
                f"({r['answers']} answers x {r['max_new_tokens']} new tokens), {r['tokens_per_s']:8.1f} tokens/s{peak}"
            )
            if r["failed"]:
                failures.append(
                    f"mllm {name} {kind}: {r['failed']} answers failed: {r['first_failure']}"
                )
        if result["loaded_dtypes"] != [str(TORCH_DTYPES[dtype])]:
            failures.append(f"mllm {name}: loaded as {result['loaded_dtypes']}, not {dtype}")
        where = device
        if device.type == "cuda" and device.index is None:
            where = torch.device("cuda", torch.cuda.current_device())
        if result["loaded_devices"] != [str(where)]:
            failures.append(f"mllm {name}: weights on {result['loaded_devices']}, not {where}")
        if (
            result["weights_gpu_gb"] is not None
            and result["weights_gpu_gb"] > 1.1 * weights_gb + 0.5
        ):
            failures.append(
                f"mllm {name}: {result['weights_gpu_gb']:.2f} GB on the GPU for {weights_gb:.2f} GB of weights"
            )
    return failures


# -- 3. cost per image -----------------------------------------------------------------------------


def mos4_setting() -> dict:
    """The ANTS (paper preset) stream settings of configs/mos4.yaml."""
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "mos4.yaml").read_text())
    ants = cfg["methods"]["ants_paper"]["config"]
    return {
        "batch": int(cfg["stream"]["batch_size"]),
        "ens_updates": int(ants["ens_max_updates"]),
        "ens_trigger": int(ants["ens_trigger_size"]),
        "vsnl_start": int(ants["vsnl_start"]),
        "vsnl_interval": int(ants["vsnl_interval"]),
        "near_classes": max(1, round(float(ants["near_delta"]) * MOS4_ID_CLASSES)),
    }


def cost_per_image(report: dict, embed_precision: str, mllm: str) -> dict | None:
    embed = report["embedding"].get(embed_precision) or report["embedding"].get("fp32")
    answers = report["mllm"].get(mllm)
    if embed is None or answers is None:
        return None
    s = mos4_setting()
    n = MOS4_STREAM_IMAGES
    batches = math.ceil(n / s["batch"])
    vsnl_events = len(range(s["vsnl_start"], batches + 1, s["vsnl_interval"]))
    ens = (
        s["ens_updates"] * (s["ens_trigger"] + 1),
        s["ens_updates"] * (s["ens_trigger"] + s["batch"]),
    )
    vsnl = (s["near_classes"], s["near_classes"] * vsnl_events)
    embed_ms = 1000.0 / embed["end_to_end_images_per_s"]
    mllm_ms = [
        1000.0 * (e * answers["ens"]["s_per_query"] + v * answers["vsnl"]["s_per_query"]) / n
        for e, v in zip(ens, vsnl, strict=True)
    ]
    return {
        "stream_images": n,
        "ens_queries": ens,
        "vsnl_queries": vsnl,
        "embed_ms": embed_ms,
        "mllm_ms": mllm_ms,
        "total_ms": [embed_ms + m for m in mllm_ms],
        "embed_precision": embed_precision if embed_precision in report["embedding"] else "fp32",
        "mllm": mllm,
        "authors_ms": AUTHORS_MS_PER_IMAGE,
    }


def print_cost(cost: dict) -> None:
    lo, hi = cost["total_ms"]
    print(
        f"cost per image, MOS-4 (ANTS paper preset, {cost['stream_images']:,} images per stream): "
        f"{lo:.2f} to {hi:.2f} ms/image = embedding {cost['embed_ms']:.3f} ms ({cost['embed_precision']}) + "
        f"{cost['mllm']} {cost['mllm_ms'][0]:.2f} to {cost['mllm_ms'][1]:.2f} ms "
        f"({cost['ens_queries'][0]:,} to {cost['ens_queries'][1]:,} ENS and {cost['vsnl_queries'][0]} to "
        f"{cost['vsnl_queries'][1]} VSNL queries, each to its max_new_tokens); the authors give "
        f"{cost['authors_ms']} ms/image"
    )


# -- main ------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--small",
        action="store_true",
        help="tiny models on the CPU: checks that every path runs (the test suite)",
    )
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --small)")
    ap.add_argument(
        "--models",
        default="qwen2vl_2b,llava_7b",
        help="MLLMs to check, from qwen2vl_2b,llava_7b (ignored with --small)",
    )
    ap.add_argument(
        "--depth",
        type=int,
        default=None,
        help="the MLLMs at their published widths but N layers per tower (a shape check "
        "of the paths without the memory; the figures are not the models')",
    )
    ap.add_argument("--answer-batch", type=int, default=None, help="queries per batch (default 16)")
    ap.add_argument(
        "--answer-batches", type=int, default=None, help="batches timed per kind (default 2)"
    )
    ap.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="new tokens per answer (default: the family's generation settings)",
    )
    ap.add_argument("--skip-embedding", action="store_true")
    ap.add_argument(
        "--workdir", default=None, help="where the weights folders are written (default: temp)"
    )
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        spec = json.loads(Path(args.child).read_text())
        print("CHILD_JSON " + json.dumps(load_and_answer(spec)), flush=True)
        return 0

    from ants.devices import resolve_device

    try:
        device = resolve_device(args.device or ("cpu" if args.small else "cuda"), "--device")
    except ValueError as err:
        ap.error(f"{err} (without a GPU: --small runs tiny models on the CPU)")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in args.models if m not in ("qwen2vl_2b", "llava_7b")]
    if bad:
        ap.error(f"--models: unknown model {bad[0]!r}; valid: qwen2vl_2b,llava_7b")
    if args.workdir is not None:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    args.image_batch = 8 if args.small else 256
    args.model_reps = 2 if args.small else 20
    for option in ("answer_batch", "answer_batches", "max_new_tokens"):
        value = getattr(args, option)
        if value is not None and value < 1:
            ap.error(f"--{option.replace('_', '-')}: expected a positive integer, got {value}")
    if args.answer_batch is None:
        args.answer_batch = 2 if args.small else 16
    if args.answer_batches is None:
        args.answer_batches = 1 if args.small else 2
    if args.max_new_tokens is None and args.small:
        args.max_new_tokens = 4  # None: the family's generation settings
    args.num_workers = 0 if args.small else min(8, os.cpu_count() or 1)
    n_images = 8 if args.small else 2048
    if args.skip_embedding:
        n_images = args.answer_batch * args.answer_batches

    gpu = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({os.cpu_count()} cores)"
    )
    import transformers

    print(
        f"gpu_check{' --small' if args.small else ''}: {gpu}; torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )
    report: dict = {"device": gpu, "small": args.small, "embedding": {}, "mllm": {}, "cost": {}}
    failures: list[str] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu-check-", dir=args.workdir) as tmp:
        images = make_images(Path(tmp) / "images", n_images)
        args.images_for_mllm = images[: args.answer_batch * args.answer_batches]
        print(f"inputs: {n_images} generated 320 x 240 JPEG files")
        if not args.skip_embedding:
            failures += check_embedding(args, device, images, report)
        failures += check_mllms(args, device, report)
    if (args.small or args.depth is not None or args.max_new_tokens) and report["mllm"]:
        print(
            "cost per image below: not the paper's models or not their full answers (--small, "
            "--depth or --max-new-tokens), so only the arithmetic is checked"
        )
    for mllm in report["mllm"]:
        cost = cost_per_image(report, "fp16" if device.type == "cuda" else "bf16", mllm)
        if cost is not None:
            report["cost"][mllm] = cost
            print_cost(cost)
    report["seconds"] = time.perf_counter() - t_start
    report["failures"] = failures
    numbers = []

    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, float):
            numbers.append(x)

    walk(report)
    if not all(finite(x) for x in numbers):
        failures.append("a figure is not finite")
    print(
        f"gpu_check: {'PASS' if not failures else 'FAIL'} in {report['seconds']:.0f} s"
        + "".join(f"\n  FAIL {f}" for f in failures)
    )
    print("GPU_CHECK_JSON " + json.dumps(report, default=str))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
