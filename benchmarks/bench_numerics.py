"""What the portable CPU code path (ants.numerics) costs: pinned vs each library's own choice.

Runs the CPU work whose bits the workflow versions, each in a fresh process per mode (the pin
acts before torch and numpy load), alternating the modes so background load hits both alike,
and prints the best time of each and the ratio portable / native:

* CLIP text encoding (the demo's tiny CLIP over WordNet lemmas: NegMining's bulk),
* CLIP image encoding (the same model over generated 32 x 32 images),
* the static pass (negative_label_parts: images x (ID + negatives), d = 512),
* NegMining's statistic (candidates x ID classes cosines and their 95th percentile).

    python benchmarks/bench_numerics.py [--repeats 3] [--images 20000]

On an AVX2 CPU the cost is MKL's COMPATIBLE branch (SSE2) in float32 matrix products; on an
AVX-512 CPU the narrower vectors of torch, oneDNN and numpy add to it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = ("clip text", "clip image", "static pass", "mining statistic")


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from ants import numerics
    from ants.encoders import ClipSpec, load_clip
    from ants.mining import id_similarity_stats
    from ants.scores import negative_label_parts
    from ants.wordnet import load_corpus

    enc = load_clip(ClipSpec.tiny(seed=0), device="cpu", precision="fp32")
    words = load_corpus()["lemma"].tolist()[: args.texts]
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp())
    paths = []
    for i in range(args.image_files):
        paths.append(tmp / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(paths[-1])
    gen = torch.Generator().manual_seed(0)

    def unit(n: int) -> torch.Tensor:
        x = torch.randn(n, 512, generator=gen)
        return x / x.norm(dim=1, keepdim=True)

    img, idt, neg = unit(args.images), unit(1000), unit(10_000)
    cand = unit(args.candidates).numpy()
    work = {
        "clip text": lambda: enc.encode_texts(words, template="The nice {}.", batch_size=2048),
        "clip image": lambda: enc.encode_images(paths, batch_size=64, progress=False),
        "static pass": lambda: negative_label_parts(img, idt, neg, tau=0.01, group_size=100),
        "mining statistic": lambda: id_similarity_stats(cand, idt.numpy()),
    }
    out = {"mode": numerics.provenance()["mode"], "threads": torch.get_num_threads()}
    for name in WORKLOADS:
        t0 = time.perf_counter()
        work[name]()
        out[name] = time.perf_counter() - t0
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--texts", type=int, default=8_192)
    ap.add_argument("--image-files", type=int, default=512)
    ap.add_argument("--images", type=int, default=20_000)
    ap.add_argument("--candidates", type=int, default=40_000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    best: dict[str, dict[str, float]] = {"portable": {}, "native": {}}
    for _ in range(args.repeats):
        for mode in ("native", "portable"):
            env = {**os.environ, "ANTS_CPU_NUMERICS": mode}
            cmd = [sys.executable, __file__, "--child", *sys.argv[1:]]
            res = json.loads(
                subprocess.run(
                    cmd, env=env, capture_output=True, text=True, check=True
                ).stdout.splitlines()[-1]
            )
            assert res["mode"] == mode, res
            for name in WORKLOADS:
                best[mode][name] = min(best[mode].get(name, float("inf")), res[name])
    print(f"CPU numerics, best of {args.repeats} (s), torch threads {res['threads']}:")
    for name in WORKLOADS:
        n, p = best["native"][name], best["portable"][name]
        print(f"  {name:<17} native {n:7.3f}  portable {p:7.3f}  ratio {p / n:5.2f}x")


if __name__ == "__main__":
    main()
