"""The offline demo's image set: small drawn shapes and textures, generated from a seed.

Three splits, written as PNG files under one directory:

* ``id``: :data:`ID_CLASSES` (ten shapes and textures), ``images_per_class`` each;
* ``near``: :data:`NEAR_CLASSES`, each a close cousin of an ID class (an ellipse is almost a
  circle, plaid is almost a checkerboard), ``near_per_class`` each: near-OOD;
* ``far``: ``n_far`` smooth random colour fields with no shape and no regular texture: far-OOD.

Layout (``root`` = the output directory)::

    root/classnames.txt            the ID class names, one per line, in class-index order
    root/{split}.txt               image list, one "relative/path label" per line
                                   (label = ID class index, -1 for OOD), like OpenOOD's lists
    root/{split}/{class}/{i}.png   the images (class folder names use '_' for spaces)

Everything is deterministic: image ``i`` of class ``c`` is drawn with
``numpy.random.default_rng([seed, split_index, class_index, i])``, so the same spec gives
byte-identical files on every run (PNG written without time stamps). The images carry no
meaning for a random-weight CLIP; they exist so that every stage of the workflow has real
files to read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ants._io import atomic_path
from ants.progress import progress as progress_bar

__all__ = [
    "FAR_KIND",
    "ID_CLASSES",
    "NEAR_CLASSES",
    "SPLITS",
    "DemoSpec",
    "generate_demo",
    "render",
]

#: The ten ID classes (class index = position).
ID_CLASSES = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "crescent",
    "stripes",
    "checkerboard",
    "polka dots",
    "zigzag",
)
#: Near-OOD classes, each a cousin of one ID class (in the comment).
NEAR_CLASSES = (
    "ellipse",  # circle
    "rectangle",  # square
    "pentagon",  # triangle / star
    "plaid",  # checkerboard
    "waves",  # zigzag / stripes
)
#: The far-OOD "class" (no shape, no texture).
FAR_KIND = "color field"
SPLITS = ("id", "near", "far")


@dataclass(frozen=True)
class DemoSpec:
    """How many images of which size, and the seed (see the module docstring)."""

    images_per_class: int = 20
    near_per_class: int = 20
    n_far: int = 100
    image_size: int = 32
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("images_per_class", "near_per_class", "n_far"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DemoSpec.{name} must be an integer >= 1, got {value!r}")
        if (
            isinstance(self.image_size, bool)
            or not isinstance(self.image_size, int)
            or not 16 <= self.image_size <= 512
        ):
            raise ValueError(
                f"DemoSpec.image_size must be an integer in [16, 512], got {self.image_size!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"DemoSpec.seed must be an integer >= 0, got {self.seed!r}")

    @classmethod
    def from_config(cls, config: dict) -> DemoSpec:
        """A spec from the ``demo`` section of ``params.yaml`` (same key names)."""
        return cls(**dict(config))

    def n_images(self, split: str) -> int:
        """How many images ``split`` holds."""
        if split == "id":
            return self.images_per_class * len(ID_CLASSES)
        if split == "near":
            return self.near_per_class * len(NEAR_CLASSES)
        if split == "far":
            return self.n_far
        raise ValueError(f"unknown demo split {split!r}; valid: {list(SPLITS)}")


# --------------------------------------------------------------------------------------
# drawing


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))


def _contrasting(
    rng: np.random.Generator, background: tuple[int, int, int]
) -> tuple[int, int, int]:
    """A random colour at least 120 away (sum of absolute channel differences) from ``background``."""
    for _ in range(100):
        c = _colour(rng)
        if sum(abs(a - b) for a, b in zip(c, background, strict=True)) >= 120:
            return c
    return tuple(255 - v for v in background)


def _polygon(
    cx: float,
    cy: float,
    radius: float,
    n: int,
    rotation: float,
    *,
    inner: float | None = None,
    stretch: float = 1.0,
) -> list[tuple[float, float]]:
    """Vertices of a regular polygon (or a star when ``inner`` is the inner radius ratio)."""
    points = []
    steps = 2 * n if inner is not None else n
    for k in range(steps):
        r = radius * (inner if inner is not None and k % 2 else 1.0)
        a = rotation + 2 * math.pi * k / steps
        points.append((cx + r * stretch * math.cos(a), cy + r * math.sin(a)))
    return points


def _shape_canvas(rng: np.random.Generator, size: int):
    background = _colour(rng)
    img = Image.new("RGB", (size, size), background)
    fg = _contrasting(rng, background)
    cx, cy = (size / 2 + rng.uniform(-0.12, 0.12) * size for _ in range(2))
    radius = rng.uniform(0.25, 0.4) * size
    rotation = rng.uniform(0, 2 * math.pi)
    return img, ImageDraw.Draw(img), background, fg, cx, cy, radius, rotation


def _draw_shape(kind: str, rng: np.random.Generator, size: int) -> Image.Image:
    img, draw, bg, fg, cx, cy, r, rot = _shape_canvas(rng, size)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif kind == "ellipse":
        ry = r * rng.uniform(0.45, 0.65)
        draw.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=fg)
    elif kind == "square":
        draw.polygon(_polygon(cx, cy, r, 4, rot), fill=fg)
    elif kind == "rectangle":
        draw.polygon(_polygon(cx, cy, r, 4, math.pi / 4, stretch=rng.uniform(1.5, 1.9)), fill=fg)
    elif kind == "triangle":
        draw.polygon(_polygon(cx, cy, r, 3, rot), fill=fg)
    elif kind == "pentagon":
        draw.polygon(_polygon(cx, cy, r, 5, rot), fill=fg)
    elif kind == "star":
        draw.polygon(_polygon(cx, cy, r, 5, rot, inner=0.45), fill=fg)
    elif kind == "cross":
        w = r * 0.35
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fg)
    elif kind == "crescent":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
        dx = r * rng.uniform(0.45, 0.7)
        draw.ellipse([cx - r + dx, cy - r, cx + r + dx, cy + r], fill=bg)
    else:  # pragma: no cover - guarded by render()
        raise ValueError(kind)
    return img


def _draw_texture(kind: str, rng: np.random.Generator, size: int) -> Image.Image:
    a, b = _colour(rng), None
    b = _contrasting(rng, a)
    img = Image.new("RGB", (size, size), a)
    draw = ImageDraw.Draw(img)
    period = int(rng.integers(max(4, size // 8), max(6, size // 3)))
    if kind == "stripes":
        for x in range(-size, 2 * size, period):
            draw.polygon([(x, 0), (x + period // 2, 0), (x + period // 2, size), (x, size)], fill=b)
        img = img.rotate(float(rng.choice([0, 45, 90, 135])), fillcolor=a)
    elif kind == "checkerboard":
        for i in range(0, size, period):
            for j in range(0, size, period):
                if (i // period + j // period) % 2:
                    draw.rectangle([i, j, i + period - 1, j + period - 1], fill=b)
    elif kind == "plaid":
        c = _contrasting(rng, b)
        for i in range(0, size, period):
            draw.rectangle([i, 0, i + max(1, period // 3), size], fill=b)
            draw.rectangle([0, i, size, i + max(1, period // 4)], fill=c)
    elif kind == "polka dots":
        dot = max(1.5, period / 4)
        for i in range(period // 2, size + period, period):
            for j in range(period // 2, size + period, period):
                draw.ellipse([i - dot, j - dot, i + dot, j + dot], fill=b)
    elif kind in ("zigzag", "waves"):
        amplitude = period / 2
        width = max(1, period // 4)
        for y0 in range(0, size + period, period):
            xs = np.arange(0, size + 1)
            if kind == "zigzag":
                ys = y0 + amplitude * (2 * np.abs((xs / period) % 1 - 0.5))
            else:
                ys = y0 + amplitude / 2 * np.sin(2 * math.pi * xs / (2 * period))
            draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=b, width=width)
    else:  # pragma: no cover - guarded by render()
        raise ValueError(kind)
    return img


def _draw_colour_field(rng: np.random.Generator, size: int) -> Image.Image:
    """Smooth random colour clouds: low-resolution noise, upsampled and blurred."""
    low = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = Image.fromarray(low, "RGB").resize((size, size), Image.Resampling.BICUBIC)
    return img.filter(ImageFilter.GaussianBlur(radius=size / 16))


_SHAPES = (
    "circle",
    "ellipse",
    "square",
    "rectangle",
    "triangle",
    "pentagon",
    "star",
    "cross",
    "crescent",
)
_TEXTURES = ("stripes", "checkerboard", "plaid", "polka dots", "zigzag", "waves")
_RENDERERS: dict[str, Callable[[np.random.Generator, int], Image.Image]] = {
    **{k: (lambda rng, size, k=k: _draw_shape(k, rng, size)) for k in _SHAPES},
    **{k: (lambda rng, size, k=k: _draw_texture(k, rng, size)) for k in _TEXTURES},
    FAR_KIND: _draw_colour_field,
}


def render(kind: str, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """Draw one ``size`` x ``size`` RGB image of ``kind`` (an ID or near class, or :data:`FAR_KIND`)."""
    if kind not in _RENDERERS:
        raise ValueError(f"unknown demo image kind {kind!r}; valid: {sorted(_RENDERERS)}")
    img = _RENDERERS[kind](rng, size)
    if img.size != (size, size) or img.mode != "RGB":  # pragma: no cover - renderer contract
        raise AssertionError(f"renderer for {kind!r} returned {img.mode} {img.size}")
    return img


# --------------------------------------------------------------------------------------
# writing


def _slug(name: str) -> str:
    return name.replace(" ", "_")


def _write_text(path: Path, text: str) -> None:
    """Atomic text write (temporary file in the same directory, then ``os.replace``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _items(spec: DemoSpec, split: str) -> list[tuple[str, int, int, int]]:
    """``(kind, label, class_index, i)`` for every image of ``split``, in list order."""
    if split == "id":
        return [
            (c, k, k, i) for k, c in enumerate(ID_CLASSES) for i in range(spec.images_per_class)
        ]
    if split == "near":
        return [
            (c, -1, k, i) for k, c in enumerate(NEAR_CLASSES) for i in range(spec.near_per_class)
        ]
    if split == "far":
        return [(FAR_KIND, -1, 0, i) for i in range(spec.n_far)]
    raise ValueError(f"unknown demo split {split!r}; valid: {list(SPLITS)}")


def generate_demo(
    root: str | os.PathLike, spec: DemoSpec | None = None, *, progress: bool = True
) -> dict[str, Path]:
    """Write the demo image set under ``root`` (see the module docstring for the layout).

    Returns ``{"classnames": path, "id": list path, "near": list path, "far": list path}``.
    Existing files are replaced (atomically) with identical content; a split's list file is
    written after its images, so a list file exists only once every image it names does.
    """
    spec = spec or DemoSpec()
    root = Path(root)
    out: dict[str, Path] = {}
    total = sum(spec.n_images(s) for s in SPLITS)
    with progress_bar(total=total, desc="demo images", unit="img", enabled=progress) as bar:
        for split_index, split in enumerate(SPLITS):
            lines = []
            for kind, label, class_index, i in _items(spec, split):
                rng = np.random.default_rng([spec.seed, split_index, class_index, i])
                rel = Path(split) / _slug(kind) / f"{i:04d}.png"
                # atomic: never write into an existing file (it may be a read-only hard link
                # into the DVC cache)
                with atomic_path(root / rel) as tmp:
                    render(kind, rng, spec.image_size).save(tmp, format="PNG", optimize=False)
                lines.append(f"{rel.as_posix()} {label}\n")
                bar.update(1)
            out[split] = root / f"{split}.txt"
            _write_text(out[split], "".join(lines))
    out["classnames"] = root / "classnames.txt"
    _write_text(out["classnames"], "".join(f"{c}\n" for c in ID_CLASSES))
    return out
