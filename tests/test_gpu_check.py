"""benchmarks/gpu_check.py --small: the GPU check's every path (embedding at each precision, the
MLLM backends built, saved, loaded from their folders by a fresh process and asked both kinds of
question, the cost arithmetic) on tiny models on the CPU, so that it cannot rot between GPU runs."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _numbers(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _numbers(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _numbers(value)
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield node


@pytest.mark.slow  # the whole check end to end, both MLLM shapes: a minute or two
def test_gpu_check_small_runs_on_the_cpu(tmp_path, record_figure):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANTS_CACHE_DIR": str(tmp_path / "ants-cache"),
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--small",
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=900,
    )
    out = proc.stdout
    assert proc.returncode == 0, (out + proc.stderr)[-4000:]
    assert re.search(r"^gpu_check: PASS in \d+ s$", out, re.M), out
    report = json.loads(out.splitlines()[-1].removeprefix("GPU_CHECK_JSON "))
    assert report["small"] is True and report["failures"] == []
    assert all(math.isfinite(x) for x in _numbers(report))
    # embedding: fp32 and bf16 (fp16 is refused on the CPU), both finite, bf16 close to fp32
    assert set(report["embedding"]) == {"fp32", "bf16"}
    for figures in report["embedding"].values():
        assert figures["finite"] is True
        assert figures["end_to_end_images_per_s"] > 0 and figures["model_only_images_per_s"] > 0
    assert report["embedding"]["bf16"]["min_cosine_vs_fp32"] > 0.99
    for line in ("embed fp32: tiny", "embed bf16: tiny", "embed fp16: not run on the CPU"):
        assert line in out
    # the MLLMs: loaded from their folders in their dtypes, both kinds answered
    assert set(report["mllm"]) == {"qwen2vl_tiny", "llava_tiny"}
    qwen, llava = report["mllm"]["qwen2vl_tiny"], report["mllm"]["llava_tiny"]
    assert (qwen["loaded_dtypes"], llava["loaded_dtypes"]) == (
        ["torch.bfloat16"],
        ["torch.float16"],
    )
    assert qwen["loaded_devices"] == llava["loaded_devices"] == ["cpu"]
    # the authors' processor setting, given as processor_kwargs, applied on loading
    assert qwen["image_tokens"] == {"28x28": 256, "56x56": 256, "224x224": 256, "640x480": 391}
    assert llava["image_tokens"] is None  # no processor setting
    for result in (qwen, llava):
        assert result["load_s"] > 0 and result["load_host_anon_gb"] >= 0
        for kind in ("ens", "vsnl"):
            assert result[kind]["failed"] == 0 and result[kind]["answers"] == 2
            assert result[kind]["tokens_per_s"] > 0
    # the cost per image: the pieces add up, and the query bounds follow configs/mos4.yaml
    for name, cost in report["cost"].items():
        assert cost["ens_queries"] == [10 * 201, 10 * (200 + 256)]
        assert cost["vsnl_queries"] == [80, 80 * 6]  # 235 batches: VSNL at 10, 50, ..., 210
        for total, mllm in zip(cost["total_ms"], cost["mllm_ms"], strict=True):
            assert math.isclose(total, cost["embed_ms"] + mllm)
        assert cost["mllm_ms"][0] < cost["mllm_ms"][1]
        assert cost["authors_ms"] == 2.84
        assert re.search(rf"cost per image, MOS-4 .*{name} .*the authors give 2\.84 ms/image", out)
    record_figure(f"gpu_check --small (tiny models, CPU): PASS in {report['seconds']:.0f} s")
