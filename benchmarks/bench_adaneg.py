"""AdaNeg stream time against its floor, at ImageNet scale on this machine (issue 11).

Synthetic unit features: K = 1,000 ID text features, M = 10,000 negatives, d = 512; a stream
mixes ID-like images (near a random ID text feature) and OOD-like images (near a random
negative), each ``normalise(a * centre + noise)`` with ``a`` uniform in [0.05, 0.6], so some
are cached and some are not. Streams of 7.5k, 15k, 30k and 60k samples, batches of 256,
the ``paper`` preset (sample-adaptive proxy, the expensive one) unless ``--preset`` says
otherwise.

For each length it prints:

* ``adaneg_s``: wall time of ``run_adaneg`` over the stream;
* ``floor_s``: the products every exact implementation pays, timed in the same run right
  after: per batch, the batch times every FILLED memory slot, i.e. slot 0 of each of the
  C = K + M labels (its text feature, the vanilla logits) plus the image slots filled when
  the batch is scored (recorded from the run: the cumulative inserts), replayed as plain
  float32 ``torch.mm`` into one reused buffer (the faster operand order, chosen at start);
* ``ratio`` = adaneg_s / floor_s (target <= 2.0 at every length); ``img_floor_s`` is the
  image-slot part of the floor alone;
* the log-log slope of both times between consecutive lengths, and the peak RSS so far.

    python benchmarks/bench_adaneg.py [--sizes 7500 15000 30000 60000] [--quick]
           [--preset paper|authors_code] [--repeats R] [--threads T]
           [--baseline path/to/other_adaneg.py]

``--quick`` runs 7.5k and 15k only. ``--repeats R`` runs AdaNeg and the floor R times each,
alternating, and keeps the best of each (for a busy machine); ``cpu_ratio`` is the same ratio
in process CPU time. ``--baseline`` also times the ``run_adaneg`` of another
file (e.g. an older version) on the same streams.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import math
import resource
import sys
import time

import numpy as np
import torch

from ants.methods.adaneg import adaneg_config, run_adaneg


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True)


def make_world(k: int, m: int, d: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return unit_rows(torch.randn(k, d, generator=gen)), unit_rows(torch.randn(m, d, generator=gen))


def make_stream(n: int, idt: torch.Tensor, neg: torch.Tensor, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1000 + seed)
    k, m, d = idt.shape[0], neg.shape[0], idt.shape[1]
    is_id = torch.rand(n, generator=gen) < 0.5
    centre = torch.where(
        is_id[:, None],
        idt[torch.randint(0, k, (n,), generator=gen)],
        neg[torch.randint(0, m, (n,), generator=gen)],
    )
    a = 0.05 + 0.55 * torch.rand(n, 1, generator=gen)
    return unit_rows(a * centre + torch.randn(n, d, generator=gen) / math.sqrt(d))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def pick_order(n: int, d: int, rows: int) -> bool:
    """True when ``slots @ x.T`` is faster than ``x @ slots.T`` here (a few trials each)."""
    gen = torch.Generator().manual_seed(7)
    x, s = torch.randn(n, d, generator=gen), torch.randn(rows, d, generator=gen)
    a, b = torch.empty(n, rows), torch.empty(rows, n)
    best = {True: math.inf, False: math.inf}
    for _ in range(3):
        for slots_first in (True, False):
            t0 = time.perf_counter()
            if slots_first:
                torch.mm(s, x.T, out=b)
            else:
                torch.mm(x, s.T, out=a)
            best[slots_first] = min(best[slots_first], time.perf_counter() - t0)
    return best[True] < best[False]


def floor_time(x, text, filled, batch, slots_first) -> tuple[float, float, float]:
    """Replay the products: per batch, batch x (text rows + filled image slots)."""
    d = x.shape[1]
    most = int(max(filled.max(initial=0), text.shape[0]))
    slots = unit_rows(torch.randn(max(1, int(filled.max(initial=0))), d,
                                  generator=torch.Generator().manual_seed(3)))
    buf = torch.empty(batch * most)
    total = img = cpu = 0.0
    for b, start in enumerate(range(0, x.shape[0], batch)):
        xb = x[start:start + batch]
        nb = xb.shape[0]
        for part, rows in ((text, text.shape[0]), (slots, int(filled[b]))):
            if rows == 0:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            if slots_first:
                torch.mm(part[:rows], xb.T, out=buf[: nb * rows].view(rows, nb))
            else:
                torch.mm(xb, part[:rows].T, out=buf[: nb * rows].view(nb, rows))
            dt = time.perf_counter() - t0
            cpu += time.process_time() - c0
            total += dt
            if part is slots:
                img += dt
    return total, img, cpu


def load_baseline(path: str):
    spec = importlib.util.spec_from_file_location("baseline_adaneg", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod.run_adaneg


def slope(sizes, times, i) -> str:
    if i == 0:
        return "-"
    return f"{math.log(times[i] / times[i - 1]) / math.log(sizes[i] / sizes[i - 1]):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[7_500, 15_000, 30_000, 60_000])
    ap.add_argument("--quick", action="store_true", help="7.5k and 15k only")
    ap.add_argument("--id-classes", type=int, default=1_000)
    ap.add_argument("--negatives", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--repeats", type=int, default=1,
                    help="run both this many times, alternating, and keep the best of each")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--baseline", default=None, help="file with another run_adaneg to time too")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [7_500, 15_000] if args.quick else sorted(args.sizes)
    cfg = adaneg_config({"preset": args.preset})
    base = load_baseline(args.baseline) if args.baseline else None
    # an older run_adaneg knows only the shared settings (the paper behaviour)
    base_cfg = {k: v for k, v in cfg.to_dict().items() if k not in ("authors_slots", "truncate_beta")}

    idt, neg = make_world(args.id_classes, args.negatives, args.dim)
    text = torch.cat([idt, neg])
    slots_first = pick_order(args.batch_size, args.dim, 20_000)
    print(f"AdaNeg benchmark: K={args.id_classes} M={args.negatives} d={args.dim} "
          f"batch={args.batch_size} preset={args.preset} ({cfg.proxy} proxy, "
          f"{cfg.image_slots} image slots, beta={cfg.effective_beta}); torch threads "
          f"{torch.get_num_threads()}; floor order: "
          f"{'slots @ x.T' if slots_first else 'x @ slots.T'}")
    header = (f"{'n':>7} {'adaneg_s':>9} {'floor_s':>8} {'ratio':>6} {'img_floor_s':>11} "
              f"{'slope_ada':>9} {'slope_floor':>11} {'cached%':>7} {'slots_end':>9} "
              f"{'peak_rss_GiB':>12} {'cpu_ratio':>9}" + (f" {'baseline_s':>10} {'max|diff|':>9}" if base else ""))
    print(header)
    t_ada, t_floor = [], []
    for i, n in enumerate(sizes):
        x = make_stream(n, idt, neg, seed=i)
        gc.collect()
        ada = ada_cpu = fl = img = fl_cpu = math.inf
        for _ in range(args.repeats):  # alternate the two, keep the best of each
            t0, c0 = time.perf_counter(), time.process_time()
            res = run_adaneg(image_features=x, id_text_features=idt, negative_features=neg,
                             batch_size=args.batch_size, config=cfg)
            ada = min(ada, time.perf_counter() - t0)
            ada_cpu = min(ada_cpu, time.process_time() - c0)
            filled = np.cumsum(res.trace["insert"])  # image slots filled when a batch is scored
            f_wall, f_img, f_cpu = floor_time(x, text, filled, args.batch_size, slots_first)
            fl, img, fl_cpu = min(fl, f_wall), min(img, f_img), min(fl_cpu, f_cpu)
        t_ada.append(ada)
        t_floor.append(fl)
        cached = sum(int(v.sum()) for v in res.trace.values()) / n
        line = (f"{n:>7} {ada:>9.2f} {fl:>8.2f} {ada / fl:>6.2f} {img:>11.2f} "
                f"{slope(sizes, t_ada, i):>9} {slope(sizes, t_floor, i):>11} "
                f"{100 * cached:>7.1f} {int(filled[-1]):>9} {peak_rss_gib():>12.2f} {ada_cpu / fl_cpu:>9.2f}")
        if base is not None:
            t0 = time.perf_counter()
            ref = base(image_features=x, id_text_features=idt, negative_features=neg,
                       batch_size=args.batch_size, config=base_cfg)
            line += (f" {time.perf_counter() - t0:>10.2f} "
                     f"{float(np.abs(ref.scores - res.scores).max()):>9.1e}")
        print(line, flush=True)
    if len(sizes) > 1:
        fit = np.polyfit(np.log(sizes), np.log(t_ada), 1)[0]
        fit_f = np.polyfit(np.log(sizes), np.log(t_floor), 1)[0]
        print(f"log-log slope over all lengths: adaneg {fit:.2f}, floor {fit_f:.2f}; "
              f"worst ratio {max(a / f for a, f in zip(t_ada, t_floor, strict=True)):.2f} (target <= 2.0)")


if __name__ == "__main__":
    main()
