"""What planning the workflow costs, against the cost of importing torch, in one run.

On a copy of the repository's workflow (Snakefile, workflow/, ants/, params.yaml: the offline
demo) with nothing built yet, prints the median wall time of ``--repeat`` runs of:

* ``snakemake -n all`` (the parse and the whole demo DAG: every rule's params and input
  functions run), and whether it imported torch (``python -X importtime``, once);
* ``ants config check params.yaml``;
* ``python -c "import <every ants module the rule files import>"``;
* ``python -c "import torch"`` alone, the yardstick: the parse used to import it.

Timings on a shared machine are noisy: read the ratios to ``import torch`` of the same run.

    python benchmarks/bench_parse.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPIED = ("Snakefile", "params.yaml", "workflow", "ants")
HEAVY = ("torch", "torchvision", "open_clip", "transformers", "sklearn")


def _env(workdir: Path) -> dict:
    e = dict(os.environ)
    e.update(
        PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}",
        PYTHONPATH=str(workdir),
        DVC_NO_ANALYTICS="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return e


def _timed(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=_env(cwd), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return seconds, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for rel in COPIED:
            src = ROOT / rel
            if src.is_dir():
                shutil.copytree(src, work / rel, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, work / rel)
        rules = "\n".join(
            p.read_text() for p in [work / "Snakefile", *(work / "workflow").rglob("*.smk")]
        )
        modules = sorted(set(re.findall(r"^\s*from (ants[\w.]*) import", rules, re.M)))
        py = sys.executable
        commands = {
            "snakemake -n all": [str(BIN / "snakemake"), "-n", "--cores", "1", "all"],
            "ants config check": [py, "-m", "ants.cli", "config", "check", "params.yaml"],
            "import the rules' ants modules": [py, "-c", "import " + ", ".join(modules)],
            "import torch": [py, "-c", "import torch"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):  # interleaved, so load changes hit every command alike
            for name, command in commands.items():
                times[name].append(_timed(command, work)[0])
        _, proc = _timed(
            [py, "-X", "importtime", "-m", "snakemake", "-n", "--cores", "1", "all"], work
        )
        imported = {
            line.rsplit("|", 1)[1].strip()
            for line in proc.stderr.splitlines()
            if line.startswith("import time:")
        }
        heavy = sorted({m.split(".")[0] for m in imported} & set(HEAVY))
    torch_s = statistics.median(times["import torch"])
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:32s} {median:6.2f} s (median of {len(values)}) = {median / torch_s:5.2f} x import torch"
        )
    print(f"snakemake -n imported: {', '.join(heavy) if heavy else 'none of ' + ', '.join(HEAVY)}")


if __name__ == "__main__":
    main()
