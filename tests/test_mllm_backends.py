"""build_backend, the transformers backend and the offline demo model (tiny, built locally)."""

import hashlib
import json
import logging
import re
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_images import _png_header_only

from ants.mllm import build_answerer, build_backend
from ants.mllm.base import BackendError, Query
from ants.mllm.cache import cache_key
from ants.mllm.demo import ANSWER_WORDS, MARKER, build_demo_model, demo_backend, ensure_demo_model
from ants.mllm.hf import (
    TransformersBackend,
    fetch_hub_revision,
    load_image,
    local_model_revision,
    resolve_hub_revision,
)
from ants.mllm.parsing import parse_vsnl_answer
from ants.mllm.prompts import Prompting

LLAVA = Prompting("llava")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        p = d / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (24 + 4 * i, 40, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def _generate(backend, queries, prompting=LLAVA):
    kind = queries[0].kind
    return backend.generate(
        queries, [prompting.prompt(q) for q in queries], prompting.settings(kind)
    )


# -- build_backend ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"backend": "vllm"},
            r"mllm.backend: unknown backend 'vllm'; valid backends: demo, transformers, openai",
        ),
        ({"model": "x"}, r"mllm.backend: required; valid backends: demo, transformers, openai"),
        (
            {"backend": "demo", "sed": 1},
            r"mllm.sed: unknown setting for backend 'demo'; valid settings: .*seed",
        ),
        (
            {"backend": "transformers"},
            r"mllm.backends.transformers.model: required for backend 'transformers'",
        ),
        (
            {"backend": "transformers", "model": "m", "dtype": "fp8"},
            r"dtype: unknown value 'fp8'; valid values: fp32, fp16, bf16",
        ),
        (
            {"backend": "openai", "model": "m"},
            r"mllm.backends.openai.base_url: required for backend 'openai'",
        ),
        (
            {"backend": "openai", "model": "m", "base_url": "localhost:8000"},
            r"mllm.backends.openai.base_url: expected an http\(s\) URL",
        ),
        ({"backend": "demo", "seed": -1}, r"mllm.seed: expected a non-negative int, got -1"),
    ],
)
def test_build_backend_errors(config, message):
    with pytest.raises(ValueError, match=message):
        build_backend(config)


def test_missing_api_key_variable_is_a_backend_error(monkeypatch):
    monkeypatch.delenv("ANTS_NO_SUCH_KEY", raising=False)
    with pytest.raises(
        BackendError, match="names the environment variable 'ANTS_NO_SUCH_KEY', but it is not set"
    ):
        build_backend(
            {
                "backend": "openai",
                "base_url": "http://127.0.0.1:9/v1",
                "model": "m",
                "api_key_env": "ANTS_NO_SUCH_KEY",
            }
        )


def test_transformers_load_failures_are_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = TransformersBackend(str(tmp_path / "no-such-folder"))
    with pytest.raises(BackendError, match="the local folder .*no-such-folder' does not exist"):
        missing.check()
    hub = build_backend(
        {"backend": "transformers", "model": "ants-test-org/no-such-mllm", "revision": "v0"}
    )
    # nothing is loaded until needed: identity works without the model (an unresolvable
    # revision name keys the answers by the name itself)
    assert hub.identity() == {
        "backend": "transformers",
        "model_id": "ants-test-org/no-such-mllm",
        "revision": "v0",
        "settings": {"dtype": "fp32"},
    }
    with pytest.raises(BackendError) as err:
        hub.check()
    message = str(err.value)
    assert message.startswith(
        "cannot load the MLLM 'ants-test-org/no-such-mllm' from the Hugging Face hub "
        f"(repo 'ants-test-org/no-such-mllm', revision 'v0'; hub cache {tmp_path / 'hf' / 'hub'}, "
        f"HF_HOME={tmp_path / 'hf'}, offline (HF_HUB_OFFLINE is set)) with transformers: "
    )
    assert message.endswith(
        "download it where there is some (`hf download ants-test-org/no-such-mllm --revision v0 "
        "--local-dir DIR`), copy DIR here and point the setting at that local folder "
        "(`mllm.backends.transformers.model: /path/to/folder`)"
    )
    assert "\n" not in message
    # a local folder that is not a model
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(BackendError) as err:
        TransformersBackend(str(junk)).check()
    assert str(err.value).startswith(
        f"cannot load the MLLM 'junk' from the local folder {str(junk)!r} with transformers: "
    )
    assert str(err.value).endswith(
        "must be a folder written by save_pretrained (config, weights, "
        "processor and tokenizer files), or a hub id"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendError, match="holds no files"):
        TransformersBackend(str(empty)).identity()


# -- what keys a transformers model's answers -------------------------------------------------

VSNL = Query("vsnl", "tench")
VSNL_SETTINGS = {"max_new_tokens": 100, "blank_image_size": [28, 28]}


def test_local_folder_is_keyed_by_its_content(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTS_CACHE_DIR", str(tmp_path / "ants-cache"))
    folder = build_demo_model(tmp_path / "a" / "tiny-llava", seed=0)
    ident = TransformersBackend(str(folder)).identity()
    assert ident["model_id"] == "tiny-llava"
    assert re.fullmatch(r"sha256-[0-9a-f]{64}", ident["revision"])
    assert ident["revision"] == local_model_revision(folder, memo=False)
    assert list((tmp_path / "ants-cache" / "file-digests").glob("*.sha256"))  # remembered
    # the same content elsewhere (moved, copied) keeps the key; docs and hidden download
    # metadata do not count
    copy = Path(shutil.copytree(folder, tmp_path / "b" / "tiny-llava"))
    (copy / "README.md").write_text("notes")
    (copy / ".cache" / "huggingface").mkdir(parents=True)
    (copy / ".cache" / "huggingface" / "model.safetensors.metadata").write_text("etag, time")
    assert TransformersBackend(str(copy)).identity() == ident
    # other weights rebuilt in the SAME folder: another revision, so another cache key
    build_demo_model(folder, seed=1)
    other = TransformersBackend(str(folder)).identity()
    assert other["revision"] != ident["revision"] and other["model_id"] == "tiny-llava"
    assert cache_key(other, "p", VSNL, VSNL_SETTINGS) != cache_key(ident, "p", VSNL, VSNL_SETTINGS)
    # and so does a changed config (same weights)
    config = json.loads((copy / "generation_config.json").read_text())
    config["max_length"] = 77
    (copy / "generation_config.json").write_text(json.dumps(config))
    assert TransformersBackend(str(copy)).identity()["revision"] != ident["revision"]
    # an explicit model_id names it
    assert TransformersBackend(str(copy), model_id="mine").identity()["model_id"] == "mine"


def test_hub_id_is_keyed_by_the_commit_in_the_local_cache(tmp_path, monkeypatch, demo_dir):
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--ants-test--tiny-llava"
    shutil.copytree(demo_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = TransformersBackend("ants-test/tiny-llava", device="cpu")
    ident = backend.identity()
    assert (ident["model_id"], ident["revision"]) == ("ants-test/tiny-llava", commit)
    assert resolve_hub_revision("ants-test/tiny-llava", "main") == commit
    # the pinned commit gives the same key as the branch that points at it
    pinned = TransformersBackend("ants-test/tiny-llava", revision=commit).identity()
    assert pinned == ident
    # the commit that keyed the answers is the one loaded (offline, from that cache), even if
    # the branch moves meanwhile
    newer = "89abcdef0123456789abcdef0123456789abcdef"
    build_demo_model(repo / "snapshots" / newer, seed=1)
    (repo / "refs" / "main").write_text(newer)
    backend.check()
    assert backend.identity()["revision"] == commit
    direct = TransformersBackend(str(demo_dir), device="cpu")
    direct.check()
    loaded, expected = backend._model.state_dict(), direct._model.state_dict()
    assert list(loaded) == list(expected)
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
    assert TransformersBackend("ants-test/tiny-llava").identity()["revision"] == newer
    # a ref that is not in the cache keys by its name; a 40-hex revision is already a commit
    assert TransformersBackend("ants-test/tiny-llava", revision="v2").identity()["revision"] == "v2"
    other = "f" * 40
    assert TransformersBackend("ants-test/absent", revision=other).identity()["revision"] == other


class _FakeHub:
    """A Hugging Face hub on 127.0.0.1 serving one file: config.json of one repo at ``main``."""

    def __init__(self, repo: str, commit: str, content: bytes):
        self.repo, self.commit, self.content = repo, commit, content
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bool) -> None:
                hub.requests.append((self.command, self.path))
                if self.path != f"/{hub.repo}/resolve/main/config.json":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.commit)
                self.send_header("ETag", f'"{hashlib.sha1(hub.content).hexdigest()}"')
                self.send_header("Content-Length", str(len(hub.content)))
                self.end_headers()
                if body:
                    self.wfile.write(hub.content)

            def do_HEAD(self):  # noqa: N802 (the http.server API)
                self._answer(body=False)

            def do_GET(self):  # noqa: N802
                self._answer(body=True)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """The fake hub, with huggingface_hub pointed at it, online, and a fresh cache."""
    from huggingface_hub import constants

    commit = "c0ffee0123456789abcdef0123456789abcdef01"
    hub = _FakeHub("ants-test/remote-llava", commit, b'{"model_type": "llava"}')
    # the endpoint and offline mode as huggingface_hub reads them (its constants are read
    # from the environment at import; the test command may run with HF_HUB_OFFLINE=1)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", True)  # no token sent
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    yield hub
    hub.stop()


def test_uncached_hub_ref_is_resolved_on_the_hub_before_keying(fake_hub, tmp_path, caplog):
    repo, config_url = fake_hub.repo, f"/{fake_hub.repo}/resolve/main/config.json"
    # (1) ref not in the local cache, online: the hub is asked, and the answers are keyed by
    # the commit from the first run on (not by the name "main")
    assert resolve_hub_revision(repo, "main") is None  # the local lookup never asks the hub
    assert fake_hub.requests == []
    backend = TransformersBackend(repo)
    with caplog.at_level(logging.WARNING, logger="ants.mllm.hf"):
        ident = backend.identity()
    assert ident["revision"] == fake_hub.commit and ident["model_id"] == repo
    assert ("GET", config_url) in fake_hub.requests
    # (huggingface_hub may also ask {endpoint}/api/... for its own telemetry)
    assert {path for _, path in fake_hub.requests if "/resolve/" in path} == {config_url}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert backend._model is None  # only config.json was fetched, nothing loaded
    snapshot = tmp_path / "hub" / "models--ants-test--remote-llava" / "snapshots" / fake_hub.commit
    assert (snapshot / "config.json").read_bytes() == fake_hub.content
    assert resolve_hub_revision(repo, "main") == fake_hub.commit  # now in the cache
    # an unknown ref (the hub answers 404): keyed by its name, with a warning naming the error
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ants.mllm.hf"):
        assert TransformersBackend(repo, revision="v9").identity()["revision"] == "v9"
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"MLLM {repo!r}: revision 'v9' is not in the local Hugging Face cache" in warning
    assert "asking the hub failed" in warning and "keyed by the name 'v9'" in warning
    assert "<40-hex hash>" in warning
    with pytest.raises(Exception):  # noqa: B017 (whatever huggingface_hub raises for a 404)
        fetch_hub_revision(repo, "v9")
    # (2) a later run, the hub gone: the same commit, from the cache, no request
    fake_hub.stop()
    fake_hub.requests.clear()
    again = build_backend({"backend": "transformers", "model": repo})
    assert again.identity() == ident
    assert fake_hub.requests == [] and again._model is None


@pytest.mark.parametrize("how", ["environment", "huggingface_hub"])
def test_offline_mode_keys_an_uncached_ref_by_its_name(fake_hub, monkeypatch, caplog, how):
    # (3) offline (the variable set now, or huggingface_hub's own mode): no request at all
    if how == "environment":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with caplog.at_level(logging.WARNING, logger="ants.mllm.hf"):
        assert TransformersBackend(fake_hub.repo).identity()["revision"] == "main"
    assert fake_hub.requests == []
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith(
        f"MLLM {fake_hub.repo!r}: revision 'main' is not in the local Hugging Face cache "
    )
    assert "and the hub is not asked in offline mode (HF_HUB_OFFLINE), so answers" in warning
    assert "keyed by the name 'main'" in warning and "<40-hex hash>" in warning


# -- the demo model ---------------------------------------------------------------------------


def test_demo_model_is_built_deterministically(demo_dir, tmp_path):
    again = build_demo_model(tmp_path / "again", seed=0)
    other = build_demo_model(tmp_path / "other", seed=1)
    weights = (demo_dir / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == weights
    assert (other / "model.safetensors").read_bytes() != weights
    assert (again / "tokenizer.json").read_text() == (demo_dir / "tokenizer.json").read_text()
    # built once: a second ensure reuses the folder
    mtime = (demo_dir / MARKER).stat().st_mtime_ns
    assert ensure_demo_model(seed=0, model_dir=demo_dir) == demo_dir
    assert (demo_dir / MARKER).stat().st_mtime_ns == mtime


def test_demo_refuses_a_foreign_folder(tmp_path, demo_dir):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "something.txt").write_text("hi")
    with pytest.raises(BackendError, match="exists but is not a demo model"):
        ensure_demo_model(seed=0, model_dir=tmp_path / "x")
    with pytest.raises(
        BackendError,
        match=r"holds architecture='llava' seed=0 version=1, not architecture='llava' seed=3",
    ):
        ensure_demo_model(seed=3, model_dir=demo_dir)
    with pytest.raises(
        ValueError, match="unknown demo architecture 'blip'; valid architectures: llava, qwen2vl"
    ):
        ensure_demo_model(architecture="blip")


def test_demo_backend_identity(demo_dir, tmp_path):
    b = demo_backend(0, model_dir=demo_dir)
    ident = b.identity()
    assert ident["backend"] == "demo" and ident["model_id"] == "ants-demo-llava-tiny"
    assert ident["revision"].startswith("v1-seed0-")
    other = demo_backend(1, model_dir=tmp_path / "seed1")
    assert other.identity()["revision"].startswith("v1-seed1-") and other.identity() != ident


def test_demo_describes_images_deterministically(demo_dir, images):
    queries = [Query("ens", "tench", image=p) for p in images]
    first = _generate(demo_backend(0, model_dir=demo_dir), queries)
    second = _generate(
        demo_backend(0, model_dir=demo_dir), queries
    )  # a fresh load of the same folder
    assert first == second
    words = set(ANSWER_WORDS)
    for text in first:
        tokens = text.split()
        assert 3 <= len(tokens) <= 7 and len(set(tokens)) == len(tokens)
        assert set(tokens) <= words
    assert len(set(first)) > 1  # the image matters


def test_demo_vsnl_answers_parse(demo_dir):
    classes = ["tench", "goldfish", "great white shark"]
    texts = _generate(demo_backend(0, model_dir=demo_dir), [Query("vsnl", c) for c in classes])
    for c, text in zip(classes, texts, strict=True):
        assert [line.split(".")[0].strip() for line in text.splitlines()] == [
            "1",
            "2",
            "3",
            "4",
            "5",
        ]
        answer = parse_vsnl_answer(text, c)
        assert answer.status == "ok" and len(answer.negatives) == 5
        assert set(answer.negatives) <= set(ANSWER_WORDS)


# -- the transformers path: batched == one at a time ------------------------------------------


def _check_left_padding_happens(backend, queries):
    backend.check()
    proc = backend._processor
    lengths = {len(proc.tokenizer(LLAVA.prompt(q))["input_ids"]) for q in queries}
    assert len(lengths) > 1, "the prompts must differ in length so that the batch is padded"
    assert proc.tokenizer.padding_side == "left"


@pytest.mark.parametrize("architecture", ["llava", "qwen2vl"])
@pytest.mark.parametrize("constrained", [False, True])
def test_batched_equals_one_at_a_time(demo_dir, qwen_dir, images, constrained, architecture):
    folder = demo_dir if architecture == "llava" else qwen_dir
    if constrained:
        backend = demo_backend(0, model_dir=folder, architecture=architecture)
    else:  # the plain transformers backend on the demo folder: free greedy decoding
        backend = build_backend({"backend": "transformers", "model": str(folder), "device": "cpu"})
    classes = ["tench", "great white shark", "goldfish", "American lobster", "ox", "hen"]
    queries = [Query("ens", c, image=p) for c, p in zip(classes, images, strict=True)]
    _check_left_padding_happens(backend, queries)
    short = Prompting(
        "llava", generation={"ens": {"max_new_tokens": 12}, "vsnl": {"max_new_tokens": 20}}
    )
    batched = _generate(backend, queries, short)
    single = [_generate(backend, [q], short)[0] for q in queries]
    assert all(isinstance(t, str) and t for t in batched)
    assert batched == single
    vsnl = [Query("vsnl", c) for c in classes]
    assert _generate(backend, vsnl, short) == [_generate(backend, [q], short)[0] for q in vsnl]


def test_qwen2vl_demo_with_the_qwen_prompts(qwen_dir, images):
    config = {"backend": "demo", "architecture": "qwen2vl", "model_dir": str(qwen_dir)}
    backend = build_backend(config)
    assert backend.identity()["model_id"] == "ants-demo-qwen2vl-tiny"
    qwen = Prompting("qwen2vl")
    ens = _generate(backend, [Query("ens", "tench", image=p) for p in images], qwen)
    assert all(3 <= len(t.split()) <= 7 for t in ens) and len(set(ens)) > 1
    classes = ["tench", "great white shark"]
    vsnl = _generate(backend, [Query("vsnl", c) for c in classes], qwen)
    statuses = [parse_vsnl_answer(t, c).status for t, c in zip(vsnl, classes, strict=True)]
    assert statuses == ["ok", "ok"]


def test_vsnl_text_only_without_blank_image(demo_dir):
    backend = demo_backend(0, model_dir=demo_dir)
    text_only = Prompting("llava", generation={"vsnl": {"blank_image_size": None}})
    with_blank = _generate(backend, [Query("vsnl", "tench")])
    without = _generate(backend, [Query("vsnl", "tench")], text_only)
    assert parse_vsnl_answer(without[0], "tench").status == "ok"
    assert without != with_blank  # the blank image really is (or is not) in the input


def test_image_resize_setting_changes_the_input(demo_dir, images):
    backend = demo_backend(0, model_dir=demo_dir)
    q = [Query("ens", "tench", image=images[5])]
    resized = Prompting("llava", generation={"ens": {"image_size": [3, 3]}})
    assert _generate(backend, q) != _generate(backend, q, resized)


def test_unreadable_image_fails_only_its_query(demo_dir, images, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    backend = demo_backend(0, model_dir=demo_dir)
    out = _generate(
        backend, [Query("ens", "tench", image=images[0]), Query("ens", "tench", image=str(bad))]
    )
    assert isinstance(out[0], str) and out[0]
    assert (
        isinstance(out[1], Exception)
        and "cannot read image" in str(out[1])
        and "broken.png" in str(out[1])
    )
    with pytest.raises(ValueError, match="a batch must hold queries of one kind"):
        backend.generate(
            [Query("vsnl", "a"), Query("ens", "b", image=images[0])],
            ["p", "q"],
            {"max_new_tokens": 3},
        )


def test_16bit_image_reaches_the_model_scaled_to_8bit(demo_dir, tmp_path):
    g8 = np.random.default_rng(1).integers(0, 256, (28, 40), dtype=np.uint8)
    p16, p8 = tmp_path / "deep.png", tmp_path / "flat.png"
    Image.fromarray(g8.astype(np.uint16) * 257).save(p16)  # 0..255 -> 0..65535 exactly
    Image.fromarray(np.repeat(g8[..., None], 3, axis=2)).save(p8)
    with Image.open(p16) as raw:
        assert raw.mode == "I;16"
    loaded = load_image(str(p16))
    assert loaded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(loaded), np.repeat(g8[..., None], 3, axis=2))
    assert np.asarray(load_image(str(p16), (5, 7))).shape == (7, 5, 3)
    backend = demo_backend(0, model_dir=demo_dir)
    deep, flat = _generate(backend, [Query("ens", "tench", image=str(p)) for p in (p16, p8)])
    assert isinstance(deep, str) and deep == flat  # the same pixels, the same answer


def test_over_limit_image_fails_only_its_query_naming_the_file(demo_dir, images, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(_png_header_only(12_000, 10_000))  # 1.2 * 10^8 pixels claimed, 60 bytes
    backend = demo_backend(0, model_dir=demo_dir)
    out = _generate(
        backend, [Query("ens", "tench", image=str(big)), Query("ens", "tench", image=images[1])]
    )
    assert isinstance(out[1], str) and out[1]
    assert isinstance(out[0], Exception)
    assert str(out[0]) == (
        f"cannot read image {str(big)!r}: image of 12000 x 10000 = 120,000,000 pixels exceeds the "
        "limit of 100,000,000 pixels (max_pixels); refused before decoding. Raise the limit if the "
        "file is genuine"
    )


def test_build_answerer_on_the_demo(demo_dir, images, tmp_path):
    config = {
        "backend": "demo",
        "seed": 0,
        "model_dir": str(demo_dir),
        "family": "llava",
        "batch_size": 4,
    }
    answerer = build_answerer(config, cache_path=tmp_path / "answers.sqlite")
    queries = [Query("ens", "tench", image=p) for p in images] + [Query("vsnl", "tench")]
    answers = answerer(queries)
    assert [a.status for a in answers] == ["ok"] * 7
    assert answerer.stats["generated"] == 7
    again = build_answerer(config, cache_path=tmp_path / "answers.sqlite")(queries)
    assert [a.negatives for a in again] == [a.negatives for a in answers]
    assert all(a.extra["from_cache"] for a in again)
