"""GL-MCM's local features: CLIP's patch tokens through the value path of the last block.

GL-MCM (Miyai et al., "GL-MCM: Global and Local Maximum Concept Matching for Zero-Shot
Out-of-Distribution Detection", IJCV 2025, https://arxiv.org/abs/2304.04521; code
https://github.com/AtsuMiyai/GL-MCM, ``clip/model.py``) scores each image patch against the ID
labels with features taken MaskCLIP-style from the LAST transformer block: the block's input
``x`` (the output of the block before), ``v = W_v ln_1(x) + b_v`` (the value projection alone,
no query-key attention), ``v = x + out_proj(v)``, ``v = v + mlp(ln_2(v))``, then, for every
patch token (the class token dropped), ``ln_post(v) @ proj`` -- the same head as the global
feature ``ln_post(block(x))[CLS] @ proj``. :func:`value_path_features` computes both in one pass
on an open_clip ``VisionTransformer`` (ViT CLIP models; layer scales ``ls_1`` / ``ls_2`` are
applied as open_clip's blocks do, identity for OpenAI weights).

What is stored: the local term of GL-MCM depends on the image AND on the ID labels, their
prompt and the temperature, so the workflow keeps one number per (image, label set, prompt, T)
(``l_mcm``, :func:`ants.methods.glmcm.local_mcm`), computed by a second pass over the images
(``ants local-features``) only for the datasets of benchmarks that run GL-MCM. Storing the
patch features instead (196 x 512 per ViT-B/16 image: 10 GB in fp16 for ImageNet val alone)
would let any label set be scored later, at a cost no other method needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["LocalFeatureError", "value_path_features"]


class LocalFeatureError(ValueError):
    """The image encoder has no patch tokens to take GL-MCM's local features from."""


def _vision_tower(model: torch.nn.Module):
    vis = getattr(model, "visual", model)
    blocks = getattr(getattr(vis, "transformer", None), "resblocks", None)
    needed = ("_embeds", "ln_post", "proj")
    if blocks is None or not all(hasattr(vis, a) for a in needed) or vis.proj is None:
        raise LocalFeatureError(
            f"GL-MCM's local features need a ViT CLIP image encoder (open_clip VisionTransformer "
            f"with a projection); this model's image encoder is {type(vis).__name__}"
        )
    if getattr(vis, "attn_pool", None) is not None or getattr(vis, "final_ln_after_pool", False):
        raise LocalFeatureError(
            "GL-MCM's local features need CLIP's plain class-token head; this image encoder pools "
            "its tokens otherwise (attention pooling or LayerNorm after pooling)"
        )
    last = blocks[-1]
    if not hasattr(last, "attn") or not hasattr(last.attn, "in_proj_weight"):
        raise LocalFeatureError(
            f"GL-MCM's local features need standard attention blocks; the last block is "
            f"{type(last).__name__}"
        )
    return vis, blocks


def value_path_features(model: torch.nn.Module, pixels: torch.Tensor):
    """``(global (B, d), local (B, P, d))``, both projected, NOT normalised.

    ``pixels``: a preprocessed batch ``(B, 3, H, W)``. ``global`` equals
    ``model.encode_image(pixels)``; ``local`` holds the value-path feature of each of the ``P``
    patches (module docstring). Raises :class:`LocalFeatureError` for an image encoder without
    patch tokens.
    """
    vis, blocks = _vision_tower(model)
    batch_first = getattr(vis.transformer, "batch_first", True)
    x = vis._embeds(pixels)
    if not batch_first:
        x = x.transpose(0, 1)
    for blk in blocks[:-1]:
        x = blk(x)
    last = blocks[-1]
    width = x.shape[-1]
    weight, bias = last.attn.in_proj_weight, last.attn.in_proj_bias
    v = F.linear(last.ln_1(x), weight[2 * width :], None if bias is None else bias[2 * width :])
    v = x + last.ls_1(F.linear(v, last.attn.out_proj.weight, last.attn.out_proj.bias))
    v = v + last.ls_2(last.mlp(last.ln_2(v)))
    out = last(x)
    if not batch_first:
        v, out = v.transpose(0, 1), out.transpose(0, 1)
    glob = vis.ln_post(out[:, 0]) @ vis.proj
    local = vis.ln_post(v[:, 1:]) @ vis.proj
    return glob, local
