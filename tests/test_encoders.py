"""CLIP encoders: the tiny offline model, batching, errors, weights files, identity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image

import ants
from ants.encoders import (
    ClipLoadError,
    ClipSpec,
    ImageReadError,
    load_clip,
)

# A small configuration for open_clip built-in names, so tag / weights-file paths stay fast.
SMALL = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture
def offline_empty_hub(monkeypatch, tmp_path):
    """An empty Hugging Face cache in offline mode, whatever this machine has cached."""
    import huggingface_hub.constants as hc

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))


def manual_image_features(enc, paths):
    """One image at a time, straight through the model: an independent route to the features."""
    rows = []
    with torch.no_grad():
        for p in paths:
            with Image.open(p) as img:
                x = enc.preprocess(img.convert("RGB")).unsqueeze(0)
            rows.append(F.normalize(enc.model.encode_image(x).float(), dim=-1)[0].numpy())
    return np.stack(rows)


# ---------------------------------------------------------------- tiny model, images, texts


def test_tiny_encodes_images_to_unit_rows_in_input_order(tiny_clip, image_files):
    feats, ok, failures = tiny_clip.encode_images(image_files, batch_size=4, progress=False)
    assert feats.shape == (6, 64) and feats.dtype == np.float32 and feats.flags.c_contiguous
    assert ok.tolist() == [True] * 6 and failures == ()
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(feats, manual_image_features(tiny_clip, image_files), atol=1e-6)


def test_images_are_distinct(tiny_clip, image_files):
    feats = tiny_clip.encode_images(image_files, progress=False).features
    cos = feats @ feats.T
    off_diagonal = cos[~np.eye(len(feats), dtype=bool)]
    assert off_diagonal.max() < 1 - 1e-4


def test_same_input_gives_bit_identical_features(tiny_clip, image_files):
    a = tiny_clip.encode_images(image_files, progress=False).features
    b = tiny_clip.encode_images(image_files, progress=False).features
    assert np.array_equal(a, b)
    again = load_clip(ClipSpec.tiny(seed=0), device="cpu")
    assert np.array_equal(again.encode_images(image_files, progress=False).features, a)
    texts = ["a dog", "a cat", "wooden object"]
    assert np.array_equal(again.encode_texts(texts), tiny_clip.encode_texts(texts))


def test_other_seed_gives_other_weights(tiny_clip):
    other = load_clip(ClipSpec.tiny(seed=1), device="cpu")
    assert not np.allclose(other.encode_texts(["a dog"]), tiny_clip.encode_texts(["a dog"]), atol=1e-3)


def test_batch_size_and_workers_do_not_change_results(tiny_clip, image_files):
    ref = tiny_clip.encode_images(image_files, batch_size=64, progress=False).features
    one = tiny_clip.encode_images(image_files, batch_size=1, progress=False).features
    np.testing.assert_allclose(one, ref, atol=1e-6, rtol=0)
    workers = tiny_clip.encode_images(image_files, batch_size=4, num_workers=2, progress=False).features
    np.testing.assert_allclose(workers, ref, atol=1e-6, rtol=0)
    texts = [f"class number {i}" for i in range(11)]
    np.testing.assert_allclose(
        tiny_clip.encode_texts(texts, batch_size=3), tiny_clip.encode_texts(texts, batch_size=256), atol=1e-6, rtol=0
    )


def test_eval_transform_is_resize_bicubic_center_crop_clip_norm(tiny_clip, image_files):
    # Independent re-implementation of docs/METHOD.md's preprocessing at the tiny size (32 px).
    with Image.open(image_files[1]) as img:  # 64 x 48, not square
        img = img.convert("RGB")
        got = tiny_clip.preprocess(img)
        resized = TF.resize(img, 32, interpolation=TF.InterpolationMode.BICUBIC)
        want = TF.normalize(
            TF.to_tensor(TF.center_crop(resized, [32, 32])),
            mean=[0.48145466, 0.4578275, 0.40821073],
            std=[0.26862954, 0.26130258, 0.27577711],
        )
    assert got.shape == (3, 32, 32)
    torch.testing.assert_close(got, want)


def test_texts_unit_rows_template_and_manual_route(tiny_clip):
    feats = tiny_clip.encode_texts(["dog", "cat"], template="The nice {}.")
    assert feats.shape == (2, 64) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-6)
    assert np.array_equal(feats, tiny_clip.encode_texts(["The nice dog.", "The nice cat."]))
    with torch.no_grad():
        tokens = tiny_clip.tokenizer(["The nice dog."])
        manual = F.normalize(tiny_clip.model.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(feats[:1], manual, atol=1e-6)
    assert not np.allclose(feats[0], feats[1], atol=1e-3)


def test_empty_inputs(tiny_clip):
    assert tiny_clip.encode_texts([]).shape == (0, 64)
    feats, ok, failures = tiny_clip.encode_images([], progress=False)
    assert feats.shape == (0, 64) and ok.shape == (0,) and failures == ()


@pytest.mark.parametrize("template", ["no placeholder", "{} and {}", "{name}", "{"])
def test_bad_template(tiny_clip, template):
    with pytest.raises(ValueError, match="template"):
        tiny_clip.encode_texts(["x"], template=template)


def test_bad_arguments(tiny_clip, image_files):
    with pytest.raises(TypeError, match="not a single string"):
        tiny_clip.encode_texts("dog")
    with pytest.raises(TypeError, match="item 1 is 3"):
        tiny_clip.encode_texts(["dog", 3])
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        tiny_clip.encode_images(image_files, batch_size=0)
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        tiny_clip.encode_images(image_files, on_error="ignore")
    with pytest.raises(ValueError, match="num_workers must be an integer >= 0, got -1"):
        tiny_clip.encode_images(image_files, num_workers=-1)
    with pytest.raises(TypeError, match="not a single path"):
        tiny_clip.encode_images(str(image_files[0]))


# ---------------------------------------------------------------- unreadable images


@pytest.fixture
def with_bad_files(tmp_path, image_files):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(np.random.default_rng(1).bytes(500))
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    missing = tmp_path / "missing.png"
    return [image_files[0], corrupt, image_files[1], text, missing, image_files[2]]


def test_corrupt_file_raises_naming_it(tiny_clip, with_bad_files):
    with pytest.raises(ImageReadError, match=r"cannot read image .*corrupt\.jpg") as info:
        tiny_clip.encode_images(with_bad_files, batch_size=2, progress=False)
    assert info.value.path == str(with_bad_files[1])


def test_skip_mode_records_failures_and_keeps_the_rest(tiny_clip, with_bad_files, image_files):
    feats, ok, failures = tiny_clip.encode_images(with_bad_files, batch_size=2, progress=False, on_error="skip")
    assert ok.tolist() == [True, False, True, False, False, True]
    assert [(f.index, f.path) for f in failures] == [(i, str(with_bad_files[i])) for i in (1, 3, 4)]
    assert "UnidentifiedImageError" in failures[0].message
    assert "FileNotFoundError" in failures[2].message
    good = tiny_clip.encode_images(image_files[:3], progress=False).features
    np.testing.assert_allclose(feats, good, atol=1e-6)


# ---------------------------------------------------------------- loading errors and weights


def test_hub_tag_offline_gives_one_clear_error(offline_empty_hub):
    with pytest.raises(ClipLoadError) as info:
        load_clip(ClipSpec("ViT-B-16", pretrained="openai"), device="cpu")
    msg = str(info.value)
    assert "'ViT-B-16'" in msg and "'openai'" in msg and "weights_path" in msg
    assert "HF_HUB_OFFLINE" in msg


def test_hf_hub_model_offline_error(offline_empty_hub):
    with pytest.raises(ClipLoadError, match=r"could not build CLIP model 'hf-hub:someone/clip'.*weights_path"):
        load_clip(ClipSpec("hf-hub:someone/clip"), device="cpu")


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "nowhere" / "clip.pt"
    with pytest.raises(ClipLoadError, match=rf"weights file not found: {missing}"):
        load_clip(ClipSpec("tiny", weights_path=str(missing)), device="cpu")


def test_unknown_model_lists_close_names():
    with pytest.raises(ClipLoadError, match=r"unknown CLIP model 'ViT-B-61'; close matches: \[.*'ViT-B-16'"):
        load_clip(ClipSpec("ViT-B-61"), device="cpu")
    with pytest.raises(ClipLoadError, match=r"close matches: \['tiny'\]"):
        load_clip(ClipSpec("tiny2"), device="cpu")


def test_unknown_tag_lists_valid_tags(tmp_path):
    with pytest.raises(ClipLoadError, match=r"unknown pretrained tag 'opnai' for CLIP model 'ViT-B-16'; valid tags.*'openai'"):
        load_clip(ClipSpec("ViT-B-16", pretrained="opnai"), device="cpu")
    path = tmp_path / "w.pt"
    path.write_bytes(b"x")
    with pytest.raises(ClipLoadError, match="put it in weights_path instead"):
        load_clip(ClipSpec("ViT-B-16", pretrained=str(path)), device="cpu")
    with pytest.raises(ClipLoadError, match="'tiny' has no published weights"):
        load_clip(ClipSpec("tiny", pretrained="openai"), device="cpu")


def test_weights_file_round_trip(tiny_clip, tmp_path, image_files):
    path = tmp_path / "tiny.pt"
    torch.save(tiny_clip.model.state_dict(), path)
    # another seed: every weight must come from the file
    loaded = load_clip(ClipSpec("tiny", weights_path=str(path), seed=7), device="cpu")
    assert np.array_equal(loaded.encode_texts(["a dog"]), tiny_clip.encode_texts(["a dog"]))
    assert np.array_equal(
        loaded.encode_images(image_files, progress=False).features,
        tiny_clip.encode_images(image_files, progress=False).features,
    )
    ident = loaded.identity()
    assert ident["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ident["random_init"] is False and ident["weights_file"] == str(path)
    # the fingerprint ignores where the file lies, not what it holds
    copy = tmp_path / "elsewhere" / "same.pt"
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    moved = load_clip(ClipSpec("tiny", weights_path=str(copy), seed=7), device="cpu")
    assert moved.identity() != ident and moved.fingerprint() == loaded.fingerprint()
    assert loaded.fingerprint() != tiny_clip.fingerprint()


def test_bad_weights_files_are_named(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(ClipLoadError, match=rf"could not load the weights file {junk} into CLIP model 'tiny'"):
        load_clip(ClipSpec("tiny", weights_path=str(junk)), device="cpu")
    wrong = tmp_path / "wrong.pt"
    other = load_clip(ClipSpec("tiny", overrides={"embed_dim": 32}), device="cpu")
    torch.save(other.model.state_dict(), wrong)
    with pytest.raises(ClipLoadError, match=rf"(?s)could not load the weights file {wrong}.*size mismatch"):
        load_clip(ClipSpec("tiny", weights_path=str(wrong)), device="cpu")


def test_tag_with_local_file_uses_the_tags_settings(tmp_path, offline_empty_hub):
    """A hub tag + weights_path: no download, the tag's QuickGELU / mean are applied."""
    plain = load_clip(ClipSpec("ViT-B-16", overrides=SMALL, seed=3), device="cpu")
    path = tmp_path / "b16.pt"
    torch.save(plain.model.state_dict(), path)
    enc = load_clip(ClipSpec("ViT-B-16", pretrained="openai", weights_path=str(path), overrides=SMALL), device="cpu")
    assert type(enc.model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert type(plain.model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    assert enc.identity()["quick_gelu_from_tag"] is True
    # same weights, different activation -> different features
    assert not np.allclose(enc.encode_texts(["a dog"]), plain.encode_texts(["a dog"]), atol=1e-4)

    small_l14 = {**SMALL, "text_cfg": {"width": 64, "heads": 2, "layers": 2}}
    plain_l = load_clip(ClipSpec("ViT-L-14", overrides=small_l14), device="cpu")
    torch.save(plain_l.model.state_dict(), tmp_path / "l14.pt")
    enc_l = load_clip(
        ClipSpec("ViT-L-14", pretrained="laion2b_s32b_b82k", weights_path=str(tmp_path / "l14.pt"), overrides=small_l14),
        device="cpu",
    )
    assert enc_l.identity()["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert plain_l.identity()["preprocessing"]["mean"] == pytest.approx([0.48145466, 0.4578275, 0.40821073])


def test_overrides_merge_into_the_architecture():
    enc = load_clip(ClipSpec("tiny", overrides={"embed_dim": 32, "vision_cfg": {"image_size": 48}}), device="cpu")
    assert enc.dim == 32
    prep = enc.identity()["preprocessing"]
    assert prep["size"] == [48, 48]
    assert enc.model.visual.conv1.kernel_size == (8, 8)  # patch size kept from "tiny"
    with pytest.raises(ClipLoadError, match=r"could not build CLIP model 'tiny' with overrides .*no_such_kwarg"):
        load_clip(ClipSpec("tiny", overrides={"no_such_kwarg": 1}), device="cpu")


# ---------------------------------------------------------------- devices and precision


def test_precision_and_device_checks():
    with pytest.raises(ValueError, match="precision 'fp16' is not supported on CPU.*'fp32' or 'bf16'"):
        load_clip(ClipSpec.tiny(), device="cpu", precision="fp16")
    with pytest.raises(ValueError, match=r"unknown precision 'fp64'; valid: \['fp32', 'fp16', 'bf16'\]"):
        load_clip(ClipSpec.tiny(), device="cpu", precision="fp64")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        load_clip(ClipSpec.tiny(), device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_unavailable_is_clear():
    with pytest.raises(ValueError, match="CUDA is not available"):
        load_clip(ClipSpec.tiny(), device="cuda")


def test_bf16_on_cpu_is_close_to_fp32(tiny_clip, image_files):
    enc = load_clip(ClipSpec.tiny(), device="cpu", precision="bf16")
    half = enc.encode_images(image_files, progress=False).features
    full = tiny_clip.encode_images(image_files, progress=False).features
    assert half.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(half * full, axis=1)) > 0.99


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_matches_cpu(tiny_clip, image_files, precision):
    enc = load_clip(ClipSpec.tiny(), device="cuda", precision=precision)
    gpu = enc.encode_images(image_files, progress=False).features
    cpu = tiny_clip.encode_images(image_files, progress=False).features
    tol = 1e-4 if precision == "fp32" else 2e-2
    np.testing.assert_allclose(gpu, cpu, atol=tol)
    np.testing.assert_allclose(enc.encode_texts(["a dog"]), tiny_clip.encode_texts(["a dog"]), atol=tol)


# ---------------------------------------------------------------- spec and identity


def test_identity_describes_model_and_preprocessing(tiny_clip):
    ident = tiny_clip.identity()
    assert json.loads(json.dumps(ident)) == ident
    assert ident["model"] == "tiny" and ident["pretrained"] is None and ident["seed"] == 0
    assert ident["random_init"] is True and ident["weights_sha256"] is None
    assert ident["embed_dim"] == 64 and ident["precision"] == "fp32" and ident["context_length"] == 77
    assert ident["tokenizer"] == "SimpleTokenizer"
    prep = ident["preprocessing"]
    assert prep["size"] == [32, 32] and prep["interpolation"] == "bicubic" and prep["resize_mode"] == "shortest"
    assert prep["std"] == pytest.approx([0.26862954, 0.26130258, 0.27577711])
    assert any(step.startswith("CenterCrop") for step in prep["transform"])
    assert ident["versions"] == {"ants": ants.__version__, "torch": torch.__version__, "open_clip": open_clip.__version__}
    other = load_clip(ClipSpec.tiny(seed=5), device="cpu")
    assert other.identity()["seed"] == 5
    assert len(tiny_clip.fingerprint()) == 64 and other.fingerprint() != tiny_clip.fingerprint()


def test_spec_from_config():
    assert ClipSpec.from_config("ViT-B-16:openai") == ClipSpec("ViT-B-16", pretrained="openai")
    assert ClipSpec.from_config("tiny") == ClipSpec.tiny()
    assert ClipSpec.from_config("hf-hub:org/repo") == ClipSpec("hf-hub:org/repo")
    spec = ClipSpec.from_config({"model": "ViT-B-16", "pretrained": "openai", "weights_path": "/w.bin", "seed": 2})
    assert spec == ClipSpec("ViT-B-16", "openai", "/w.bin", None, 2)
    assert ClipSpec.from_config(spec.to_dict()) == spec
    with pytest.raises(ValueError, match=r"unknown CLIP config key\(s\) \['pretrianed'\]"):
        ClipSpec.from_config({"model": "ViT-B-16", "pretrianed": "openai"})
    with pytest.raises(ValueError, match="needs a 'model' key"):
        ClipSpec.from_config({"pretrained": "openai"})
    with pytest.raises(ValueError, match="ClipSpec.seed must be an integer"):
        ClipSpec("tiny", seed=1.5)
    with pytest.raises(ValueError, match="ClipSpec.overrides must be a mapping"):
        ClipSpec("tiny", overrides=[("embed_dim", 3)])


# ---------------------------------------------------------------- hub cache, revision, images


def _fake_hub_snapshot(cache: Path, repo: str, filename: str, state_dict, commit: str = "a" * 40):
    """A Hugging Face cache holding ``repo``@``commit`` with one weights file (hub layout)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True)
    torch.save(state_dict, snap / filename)
    return snap / filename


def test_hub_tag_is_read_from_the_cache_and_records_the_snapshot_revision(tmp_path, offline_empty_hub, monkeypatch):
    import huggingface_hub.constants as hc

    plain = load_clip(ClipSpec("ViT-B-16", overrides=SMALL, seed=3), device="cpu")
    commit = "0123456789abcdef0123456789abcdef01234567"
    cache = tmp_path / "my-cache"
    weights = _fake_hub_snapshot(cache, "timm/vit_base_patch16_clip_224.openai", "open_clip_pytorch_model.bin",
                                 plain.model.state_dict(), commit)
    spec = ClipSpec("ViT-B-16", pretrained="openai", overrides=SMALL)
    enc = load_clip(spec, device="cpu", cache_dir=cache)  # offline: found in the given cache
    ident = enc.identity()
    assert ident["model_id"] == "ViT-B-16" and ident["pretrained"] == "openai"
    assert ident["revision"] == commit
    assert ident["weights_source"] == "hf-hub:timm/vit_base_patch16_clip_224.openai"
    assert ident["weights_sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    # the default cache (HF_HOME / HF_HUB_CACHE) is honoured the same way
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    assert load_clip(spec, device="cpu").identity()["revision"] == commit
    # a local file instead: the revision is its content hash
    local = tmp_path / "w.bin"
    local.write_bytes(weights.read_bytes())
    ident_local = load_clip(ClipSpec("ViT-B-16", pretrained="openai", weights_path=str(local), overrides=SMALL),
                            device="cpu").identity()
    assert ident_local["revision"] == "sha256:" + ident["weights_sha256"]
    assert ident_local["weights_source"] == "local file"
    assert load_clip(ClipSpec.tiny(), device="cpu").identity()["revision"] is None


def test_failed_hub_fetch_names_model_source_cache_and_the_way_out(tmp_path, offline_empty_hub):
    with pytest.raises(ClipLoadError) as info:
        load_clip(ClipSpec("ViT-B-16", pretrained="openai", overrides=SMALL), device="cpu",
                  cache_dir=tmp_path / "empty-cache")
    msg = str(info.value)
    assert msg.startswith("could not fetch the weights of CLIP model 'ViT-B-16' with pretrained tag 'openai' "
                          "from the Hugging Face hub (timm/vit_base_patch16_clip_224.openai) into the cache ")
    assert "empty-cache (HF_HUB_OFFLINE is set, so nothing can be downloaded)" in msg
    assert "set weights_path to the local file (keep pretrained='openai'" in msg
    assert "\n" not in msg


def test_encoder_decodes_16bit_images_like_8bit_and_refuses_huge_ones(tiny_clip, tmp_path):
    g8 = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))
    Image.fromarray(g8).save(tmp_path / "g8.png")
    Image.fromarray(g8.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    # one image per forward pass: a row's last bits may depend on its place in a batch
    feats = [tiny_clip.encode_images([tmp_path / f], progress=False).features[0] for f in ("g8.png", "g16.png")]
    np.testing.assert_array_equal(feats[0], feats[1])  # identical pixels after scaling
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(big)
    with pytest.raises(ImageReadError, match=r"cannot read image .*big\.png: .*100 x 100 = 10,000 pixels exceeds "
                                             r"the limit of 5,000 pixels"):
        tiny_clip.encode_images([big], progress=False, max_pixels=5000)
