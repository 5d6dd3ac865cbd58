"""The transformers backend made ready for a GPU (issue 20), checked on the CPU with tiny models.

* weights load straight onto the requested device in the requested dtype (``device_map``),
  with no full-precision copy on the host when a half precision is asked;
* processor settings are checked when loaded and key the answers by what they did (the
  image-token count per probe size);
* a model and processor built in memory go in through ``TransformersBackend.from_model``;
* the demo backend's dtype is a setting (fp16 and bf16 generate on the CPU too).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from ants.config import ConfigError, load_params, validate_params
from ants.mllm import build_answerer, build_backend
from ants.mllm.answering import CachedAnswerer
from ants.mllm.base import BackendError, Query
from ants.mllm.cache import AnswerCache, cache_key
from ants.mllm.hf import (
    PROBE_SIZES,
    TransformersBackend,
    built_model_revision,
    probe_processor,
)
from ants.mllm.parsing import parse_vsnl_answer
from ants.mllm.prompts import Prompting

ROOT = Path(__file__).resolve().parents[2]
TORCH = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
#: the authors' Qwen2-VL setting (256 to 1280 tokens of 28 x 28 pixels), in the supported form
AUTHORS_SIZE = {"size": {"shortest_edge": 256 * 28 * 28, "longest_edge": 1280 * 28 * 28}}
QWEN = Prompting("qwen2vl")
LLAVA = Prompting("llava")


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path, monkeypatch):
    """Digest memos and default demo folders go to the test's folder, not ~/.cache/ants."""
    monkeypatch.setenv("ANTS_CACHE_DIR", str(tmp_path / "ants-cache"))


def _ask(backend, queries, prompting):
    kind = queries[0].kind
    return backend.generate(
        queries, [prompting.prompt(q) for q in queries], prompting.settings(kind)
    )


@pytest.fixture
def load_calls(monkeypatch):
    """The keyword arguments of every AutoModelForImageTextToText.from_pretrained call (the
    real loader still runs)."""
    calls = []
    real = AutoModelForImageTextToText.from_pretrained

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(AutoModelForImageTextToText, "from_pretrained", spy)
    return calls


# -- 1. straight onto the device, in the dtype ----------------------------------------------


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "bf16"])
def test_weights_are_loaded_onto_the_device_in_the_dtype(demo_dir, load_calls, dtype):
    backend = TransformersBackend(str(demo_dir), device="cpu", dtype=dtype)
    backend.check()
    (call,) = load_calls
    # loaded where they run: no host copy first and a .to(device) afterwards
    assert call["device_map"] == {"": torch.device("cpu")}
    assert call["dtype"] is TORCH[dtype]
    net = backend._model
    tensors = list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]
    assert {t.dtype for t in net.parameters()} == {TORCH[dtype]}
    assert {t.device for t in tensors} == {torch.device("cpu")}
    assert backend.identity()["settings"] == {"dtype": dtype}


def test_a_device_this_machine_lacks_fails_before_any_weight_is_read(demo_dir, load_calls):
    with pytest.raises(
        ValueError, match=r"mllm.backends.transformers.device: unknown device 'gpu'; valid: 'auto'"
    ):
        TransformersBackend(str(demo_dir), device="gpu")
    backend = TransformersBackend(str(demo_dir), device="cuda:99")
    with pytest.raises(BackendError) as err:
        backend.check()
    assert str(err.value).startswith("mllm.backends.transformers.device: 'cuda:99' requested but ")
    assert load_calls == []


_RSS_CHILD = textwrap.dedent(
    """
    import json, re, sys, threading, time
    from ants.mllm.hf import TransformersBackend

    def anon():
        status = open("/proc/self/status").read()
        return int(re.search(r"RssAnon:\\s+(\\d+)", status).group(1)) * 1024

    folder, dtype, warm = sys.argv[1:]
    TransformersBackend(warm, device="cpu", dtype=dtype).check()  # imports, first-use set-up
    base = anon()
    peak, done = [base], []

    def sample():
        while not done:
            peak[0] = max(peak[0], anon())
            time.sleep(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    backend = TransformersBackend(folder, device="cpu", dtype=dtype)
    backend.check()
    done.append(1)
    thread.join()
    nbytes = sum(p.numel() * p.element_size() for p in backend._model.parameters())
    print(json.dumps({"growth": peak[0] - base, "params": nbytes}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RssAnon from /proc")
def test_half_precision_load_makes_no_full_precision_copy(tmp_path, demo_dir):
    """A 42 M-parameter model saved in fp32 (161 MiB) loaded in bf16: the process's anonymous
    memory grows by about the bf16 weights (81 MiB), not by an fp32 copy on top."""
    from ants.mllm import demo

    tokenizer = demo._build_tokenizer()
    processor, model_class, config = demo._llava(tokenizer)
    text = config.text_config
    text.hidden_size, text.intermediate_size, text.num_hidden_layers = 768, 2048, 8
    text.num_attention_heads = text.num_key_value_heads = 8
    torch.manual_seed(0)
    model = model_class(config)
    fp32_bytes = sum(p.numel() * 4 for p in model.parameters())
    model.save_pretrained(tmp_path / "m")
    processor.save_pretrained(tmp_path / "m")
    del model
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(tmp_path / "m"), "bf16", str(demo_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["params"] == fp32_bytes // 2  # all weights in bf16
    # the weights themselves, plus at most a quarter for transient per-tensor copies
    assert figures["growth"] < 1.25 * figures["params"], (figures, fp32_bytes)


# -- 2. processor settings: checked, and keyed by what they did -----------------------------


def test_image_token_counts_of_the_demo_qwen_processor(qwen_dir):
    """Qwen2-VL's smart resize by hand: sides rounded to multiples of 28 within [min, max]
    pixels, one token per 28 x 28 square. The demo folder's own setting: 56^2 to 112^2."""
    default = AutoProcessor.from_pretrained(str(qwen_dir))
    assert probe_processor(default)["image_tokens"] == {
        "28x28": 4,  # 28 x 28 < 56^2: scaled x2 to 56 x 56 = 2 x 2 squares
        "56x56": 4,
        "224x224": 16,  # > 112^2: scaled /2 to 112 x 112 = 4 x 4 squares
        "640x480": 12,  # /4.95 -> 112 x 84 = 4 x 3 squares
    }
    authors = AutoProcessor.from_pretrained(str(qwen_dir), **AUTHORS_SIZE)
    assert probe_processor(authors)["image_tokens"] == {
        "28x28": 256,  # scaled up to 448 x 448 = 16 x 16 squares
        "56x56": 256,
        "224x224": 256,
        "640x480": 391,  # within range: 644 x 476 = 23 x 17 squares
    }
    assert [f"{w}x{h}" for w, h in PROBE_SIZES] == ["28x28", "56x56", "224x224", "640x480"]


def test_the_processor_setting_changes_the_image_tokens_and_the_key(qwen_dir, image_files):
    lengths: dict[str, list[int]] = {"default": [], "authors": []}

    def recorder(name):
        def factory(kind, input_length, settings):
            lengths[name].append(input_length)
            return []

        return factory

    default = TransformersBackend(
        str(qwen_dir), device="cpu", logits_processor_factory=recorder("default")
    )
    authors = TransformersBackend(
        str(qwen_dir),
        device="cpu",
        processor_kwargs=AUTHORS_SIZE,
        logits_processor_factory=recorder("authors"),
    )
    # no processor setting: the key is as before (the processor is not even loaded)
    assert default.identity()["settings"] == {"dtype": "fp32"}
    assert default._processor is None
    ident = authors.identity()
    assert ident["settings"] == {
        "dtype": "fp32",
        "processor_kwargs": AUTHORS_SIZE,
        "image_tokens": {"28x28": 256, "56x56": 256, "224x224": 256, "640x480": 391},
    }
    assert authors._model is None  # keyed without loading the weights
    query = Query("ens", "tench", image=str(image_files[0]))
    settings = QWEN.settings("ens")  # images resized to 56 x 56 first
    assert cache_key(ident, "p", query, settings) != cache_key(
        default.identity(), "p", query, settings
    )
    # the model really gets 256 image tokens instead of 4
    _ask(default, [query], QWEN)
    _ask(authors, [query], QWEN)
    assert lengths["authors"][0] - lengths["default"][0] == 256 - 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"min_pixel": 200704},
            r"^mllm\.backends\.transformers\.processor_kwargs\.min_pixel: not a setting of "
            r"Qwen2VLProcessor \(transformers [0-9.]+\), of its image processor or of its "
            r"tokenizer; the image processor documents: .*\bsize\b",
        ),
        (  # the folder's own setting: does nothing, so it cannot be told from an ignored one
            {"size": {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}},
            r"^mllm\.backends\.transformers\.processor_kwargs: the image settings size leave the "
            r"output of Qwen2VLProcessor .* unchanged on the probe images \(image tokens per size: "
            r"\{'28x28': 4, '56x56': 4, '224x224': 16, '640x480': 12\}\)",
        ),
        (
            {"size": {"shortest_edge": 200704}},
            r"^mllm\.backends\.transformers\.processor_kwargs: Qwen2VLProcessor .* fails on a probe "
            r"image with the settings \{'size': \{'shortest_edge': 200704\}\}: ValueError: ",
        ),
    ],
)
def test_a_processor_setting_that_is_not_applied_is_refused(qwen_dir, settings, message):
    backend = TransformersBackend(str(qwen_dir), device="cpu", processor_kwargs=settings)
    with pytest.raises(BackendError, match=message) as err:
        backend.identity()
    assert "\n" not in str(err.value)
    with pytest.raises(BackendError, match=message):
        TransformersBackend(str(qwen_dir), device="cpu", processor_kwargs=settings).check()


def _installed_processor_deprecates(qwen_dir, settings) -> bool:
    """Whether this transformers warns (FutureWarning / DeprecationWarning) when the Qwen2-VL
    processor runs with ``settings``: 5.25 does for min_pixels / max_pixels, 5.17 does not."""
    probe = probe_processor(AutoProcessor.from_pretrained(str(qwen_dir), **settings))
    return any(
        category in ("FutureWarning", "DeprecationWarning") and "pixels" in message
        for category, message in probe["warnings"]
    )


def test_min_max_pixels_are_refused_where_deprecated_and_keyed_as_size_elsewhere(qwen_dir):
    # the pre-5 form of the authors' setting; the same pixels as AUTHORS_SIZE's size form
    settings = {"min_pixels": 200704, "max_pixels": 1003520}
    backend = TransformersBackend(str(qwen_dir), device="cpu", processor_kwargs=settings)
    if _installed_processor_deprecates(qwen_dir, settings):  # transformers 5.25
        message = r"^mllm\.backends\.transformers\.processor_kwargs\.(min|max)_pixels: "
        with pytest.raises(BackendError, match=message) as err:
            backend.identity()
        text = str(err.value)
        assert "\n" not in text and "FutureWarning" not in text
        assert "is deprecated and will be removed" in text
        assert "size: {shortest_edge: MIN_PIXELS, longest_edge: MAX_PIXELS}" in text
        with pytest.raises(BackendError, match=message):
            TransformersBackend(str(qwen_dir), device="cpu", processor_kwargs=settings).check()
    else:  # still supported (5.17): applied, so the image tokens are the size form's
        size_form = TransformersBackend(
            str(qwen_dir), device="cpu", processor_kwargs=dict(AUTHORS_SIZE)
        )
        tokens = backend.identity()["settings"]["image_tokens"]
        assert tokens == size_form.identity()["settings"]["image_tokens"]
        assert tokens["224x224"] == 256


def test_a_fixed_token_processor_setting_is_seen_in_the_pixels(demo_dir):
    # LLaVA always gives 4 image tokens (28 x 28 crop); resizing to 56 first changes the crop
    backend = TransformersBackend(
        str(demo_dir), device="cpu", processor_kwargs={"size": {"shortest_edge": 56}}
    )
    tokens = backend.identity()["settings"]["image_tokens"]
    assert tokens == {"28x28": 4, "56x56": 4, "224x224": 4, "640x480": 4}


# -- 3. a model built in memory ---------------------------------------------------------------


def test_a_built_model_answers_as_the_folder_it_came_from(demo_dir, image_files, tmp_path):
    folder = TransformersBackend(str(demo_dir), device="cpu")
    net = AutoModelForImageTextToText.from_pretrained(str(demo_dir))
    processor = AutoProcessor.from_pretrained(str(demo_dir))
    built = TransformersBackend.from_model(net, processor, model_id="tiny-built")
    assert processor.tokenizer.padding_side == "left"
    queries = [
        Query("ens", c, image=str(p))
        for c, p in zip(["ox", "tench", "hen"], image_files[:3], strict=True)
    ]
    short = Prompting(
        "llava", generation={"ens": {"max_new_tokens": 6}, "vsnl": {"max_new_tokens": 12}}
    )
    assert _ask(built, queries, short) == _ask(folder, queries, short)
    vsnl = [Query("vsnl", "tench"), Query("vsnl", "goldfish")]
    assert _ask(built, vsnl, short) == _ask(folder, vsnl, short)
    # keyed by a digest of the weights and the processor, unless a revision is given
    ident = built.identity()
    assert ident["backend"] == "transformers" and ident["model_id"] == "tiny-built"
    assert ident["settings"] == {"dtype": "fp32"}
    assert ident["revision"] == built_model_revision(net, processor)
    assert ident["revision"].startswith("sha256-") and len(ident["revision"]) == 7 + 64
    twin = AutoModelForImageTextToText.from_pretrained(str(demo_dir))
    assert built_model_revision(twin, processor) == ident["revision"]
    with torch.no_grad():
        next(twin.parameters()).view(-1)[0] += 1e-3
    assert built_model_revision(twin, processor) != ident["revision"]
    named = TransformersBackend.from_model(twin, processor, model_id="x", revision="ckpt-7")
    assert named.identity()["revision"] == "ckpt-7"
    # through the answer cache, like any backend
    cache = AnswerCache(tmp_path / "answers.sqlite")
    answers = CachedAnswerer(built, cache, short, batch_size=2)(queries)
    assert [a.extra["from_cache"] for a in answers] == [False] * 3
    again = CachedAnswerer(built, cache, short, batch_size=2)(queries)
    assert [a.raw_text for a in again] == [a.raw_text for a in answers]
    assert all(a.extra["from_cache"] for a in again)
    built.close()
    with pytest.raises(BackendError, match="the built MLLM 'tiny-built' was closed"):
        _ask(built, queries[:1], short)


def test_a_built_model_takes_its_dtype_and_device_from_the_model(demo_dir):
    net = AutoModelForImageTextToText.from_pretrained(str(demo_dir), dtype=torch.bfloat16)
    processor = AutoProcessor.from_pretrained(str(demo_dir))
    built = TransformersBackend.from_model(net, processor, model_id="m", revision="r")
    assert (built.dtype, built.device) == ("bf16", "cpu")
    assert built.identity()["settings"] == {"dtype": "bf16"}
    with pytest.raises(ValueError, match="model_id: expected a non-empty name"):
        TransformersBackend.from_model(net, processor, model_id="")
    with pytest.raises(ValueError, match="dtype: torch.float64 is not one of fp32, fp16, bf16"):
        TransformersBackend.from_model(net.to(torch.float64), processor, model_id="m")


# -- 4. the demo backend's dtype --------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["fp16", "bf16"])
def test_the_demo_answers_in_half_precision_on_the_cpu(demo_dir, image_files, dtype):
    config = {"backend": "demo", "model_dir": str(demo_dir), "seed": 0}
    half = build_backend({**config, "dtype": dtype})
    full = build_backend(config)
    assert half.identity()["settings"] == {"dtype": dtype}
    assert full.identity()["settings"] == {"dtype": "fp32"}  # the default: the key of old answers
    query = Query("vsnl", "tench")
    settings = LLAVA.settings("vsnl")
    assert cache_key(half.identity(), "p", query, settings) != cache_key(
        full.identity(), "p", query, settings
    )
    half.check()
    assert {p.dtype for p in half._model.parameters()} == {TORCH[dtype]}
    ens = _ask(half, [Query("ens", "tench", image=str(p)) for p in image_files[:3]], LLAVA)
    assert all(isinstance(t, str) and 3 <= len(t.split()) <= 7 for t in ens)
    vsnl = _ask(half, [query, Query("vsnl", "goldfish")], LLAVA)
    assert [parse_vsnl_answer(t, "x").status for t in vsnl] == ["ok", "ok"]


def test_the_demo_dtype_setting_is_validated(demo_dir):
    params = load_params(ROOT / "params.yaml")
    assert params["mllm"]["backends"]["demo"]["dtype"] == "fp32"
    bad = copy.deepcopy(params)
    bad["mllm"]["backends"]["demo"]["dtype"] = "fp8"
    with pytest.raises(ConfigError) as err:
        validate_params(bad)
    assert [p for p in err.value.problems if "mllm.backends.demo.dtype" in p]
    with pytest.raises(ValueError, match=r"mllm.backends.demo.dtype: unknown value 'fp8'"):
        build_backend({"backend": "demo", "dtype": "fp8"})
    answerer = build_answerer({"backend": "demo", "dtype": "bf16", "model_dir": str(demo_dir)})
    assert answerer.identity["settings"] == {"dtype": "bf16"}
