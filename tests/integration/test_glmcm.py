"""GL-MCM: the value-path local features against a direct re-implementation on the tiny random
ViT, the score against a direct formula, and the local-features stage end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from ants.local_features import LocalFeatureError, value_path_features
from ants.methods.glmcm import local_mcm, run_glmcm


def _layer_norm(x, ln):
    """LayerNorm written out: (x - mean) / sqrt(var + eps) * weight + bias (biased variance)."""
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


def _direct_value_path(model, pixels):
    """GL-MCM's modified block, token by token from the weights (their clip/model.py:
    v = out_proj(W_v ln_1(x) + b_v); v = v + x; v = v + mlp(ln_2(v)); ln_post(v) @ proj)."""
    vis = model.visual
    grid = F.conv2d(pixels, vis.conv1.weight, stride=vis.conv1.stride)
    tokens = grid.flatten(2).transpose(1, 2)  # (B, P, width)
    cls = vis.class_embedding.expand(tokens.shape[0], 1, -1)
    x = torch.cat([cls, tokens], dim=1) + vis.positional_embedding
    x = _layer_norm(x, vis.ln_pre)
    for blk in vis.transformer.resblocks[:-1]:
        x = blk(x)  # the ordinary blocks (their code runs them unchanged)
    last = vis.transformer.resblocks[-1]
    width = x.shape[-1]
    w_v = last.attn.in_proj_weight[2 * width :]
    b_v = last.attn.in_proj_bias[2 * width :]
    fc, proj_ = last.mlp.c_fc, last.mlp.c_proj
    out = torch.empty(x.shape[0], x.shape[1] - 1, vis.proj.shape[1])
    for b in range(x.shape[0]):
        for t in range(1, x.shape[1]):  # every patch token (the class token dropped)
            xt = x[b, t]
            v = w_v @ _layer_norm(xt, last.ln_1) + b_v
            v = last.attn.out_proj.weight @ v + last.attn.out_proj.bias + xt
            h = F.gelu(fc.weight @ _layer_norm(v, last.ln_2) + fc.bias)
            v = v + proj_.weight @ h + proj_.bias
            out[b, t - 1] = _layer_norm(v, vis.ln_post) @ vis.proj
    return out


@pytest.fixture(scope="module")
def tiny_model():
    from ants.encoders import ClipSpec, load_clip

    return load_clip(ClipSpec.tiny(seed=3), device="cpu", precision="fp32").model


def test_local_features_equal_a_direct_reimplementation_of_the_value_path(tiny_model):
    assert type(tiny_model.visual.transformer.resblocks[-1].mlp.gelu) is torch.nn.GELU
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        glob, local = value_path_features(tiny_model, pixels)
        want = _direct_value_path(tiny_model, pixels)
        assert local.shape == (2, 16, 64)  # 32 x 32 pixels in 8 x 8 patches, 64-d
        assert torch.allclose(local, want, atol=1e-5), float((local - want).abs().max())
        assert torch.allclose(glob, tiny_model.encode_image(pixels), atol=1e-5)
        # the value path is not the ordinary last layer's patch tokens
        vis = tiny_model.visual
        ordinary = vis.ln_post(vis.transformer(vis._embeds(pixels)))[:, 1:] @ vis.proj
        assert not torch.allclose(ordinary, local, atol=1e-3)


def test_a_non_vit_image_encoder_is_refused_clearly():
    class NoTokens(torch.nn.Module):
        visual = torch.nn.Linear(3, 3)

    with pytest.raises(LocalFeatureError, match="need a ViT CLIP image encoder .* Linear"):
        value_path_features(NoTokens(), torch.zeros(1, 3, 4, 4))


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("temperature", [1.0, 0.01])
def test_glmcm_score_by_a_direct_formula(temperature):
    """S = max_k softmax(cos(g, t_k)/T) + lambda max_p max_k softmax(cos(l_p, t_k)/T), one
    softmax per patch; T = 1 (their code) and T = 0.01 (logits of 35-60, as confident as CLIP)."""
    rng = np.random.default_rng(1)
    k, p, d, n = 7, 9, 32, 5
    idt = _unit(rng.standard_normal((k, d))).astype(np.float32)
    glob = _unit(idt[rng.integers(0, k, n)] * 2 + rng.standard_normal((n, d))).astype(np.float32)
    local = (idt[rng.integers(0, k, (n, p))] * 3 + rng.standard_normal((n, p, d))).astype(
        np.float32
    )
    got = run_glmcm(
        image_features=glob,
        id_text_features=idt,
        local_features=local,
        temperature=temperature,
        lambda_local=0.5,
    )
    for i in range(n):
        g = [float(glob[i] @ idt[c]) / temperature for c in range(k)]
        mcm = max(math.exp(v - max(g)) for v in g) / sum(math.exp(v - max(g)) for v in g)
        best = 0.0
        for j in range(p):
            lp = local[i, j] / np.linalg.norm(local[i, j])
            z = [float(lp @ idt[c]) / temperature for c in range(k)]
            best = max(best, 1.0 / sum(math.exp(v - max(z)) for v in z))
        assert got.variants["mcm"][i] == pytest.approx(mcm, rel=1e-5)
        assert got.variants["l_mcm"][i] == pytest.approx(best, rel=1e-5)
        assert got.scores[i] == pytest.approx(mcm + 0.5 * best, rel=1e-5)
    # the precomputed local term gives the same scores
    pre, _ = local_mcm(local, idt, temperature=temperature)
    again = run_glmcm(
        image_features=glob,
        id_text_features=idt,
        local_scores=pre,
        temperature=temperature,
        lambda_local=0.5,
    )
    assert np.array_equal(again.scores, got.scores)
    with pytest.raises(ValueError, match="exactly one of local_scores or local_features"):
        run_glmcm(image_features=glob, id_text_features=idt)


def test_the_local_features_stage_matches_the_method_on_real_images(tmp_path, image_files):
    """`ants local-features` on a tiny-CLIP embeddings file: l_mcm equals local_mcm of the
    value-path features of the same images; a changed image is refused."""
    from ants import stages
    from ants.artifacts import read_parquet, write_manifest
    from ants.datasets.manifests import build_manifest
    from ants.embeddings import write_embeddings
    from ants.encoders import ClipSpec, load_clip

    backbone = {"model": "tiny", "seed": 0}
    encoding = {
        "device": "cpu",
        "precision": "fp32",
        "image_batch_size": 4,
        "text_batch_size": 64,
        "num_workers": 0,
    }
    entries = [(p.name, 0) for p in image_files]
    manifest = write_manifest(
        tmp_path / "m.parquet",
        build_manifest("toy", entries, tmp_path, progress=False),
        {"dataset": "toy"},
    )
    emb = tmp_path / "e.parquet"
    stages.embed_images(manifest, backbone, encoding, emb, progress=False)
    clip = load_clip(ClipSpec.tiny(seed=0), device="cpu", precision="fp32")
    names = ["cat", "dog", "fox"]
    text = tmp_path / "t.parquet"  # an ID text file of GL-MCM's prompt alone (no class count)
    rows = pd.DataFrame(
        {
            "class_index": np.arange(3),
            "class_name": names,
            "prompt": "photo_bare",
            "template": "a photo of a {}",
        }
    )
    write_embeddings(text, clip.encode_texts(names, template="a photo of a {}"), rows, {})
    out = tmp_path / "local.parquet"
    info = stages.local_features(
        emb, text, backbone, encoding, temperature=1.0, out=out, progress=False
    )
    frame, meta = read_parquet(out, "local")
    assert info["n_images"] == len(image_files) and meta["min_global_cosine"] > 0.999
    from PIL import Image

    pixels = torch.stack([clip.preprocess(Image.open(p).convert("RGB")) for p in image_files])
    with torch.no_grad():
        _, local = value_path_features(clip.model, pixels)
    idt, _ = stages.read_id_text(text, "photo_bare")
    want, pred = local_mcm(local, idt, temperature=1.0)
    np.testing.assert_allclose(frame["l_mcm"].to_numpy(), want, rtol=1e-5)
    assert frame["local_pred"].tolist() == pred.tolist()
    # an image changed since it was embedded: the global features no longer match
    Image.fromarray(np.full((40, 40, 3), 255, np.uint8)).save(image_files[0])
    with pytest.raises(stages.StageError, match="differ from .*re-run embed_images"):
        stages.local_features(
            emb,
            text,
            backbone,
            encoding,
            temperature=1.0,
            out=tmp_path / "x.parquet",
            progress=False,
        )
