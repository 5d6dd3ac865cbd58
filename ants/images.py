"""Opening image files as 8-bit RGB, the same way for the manifest check, encoding and the MLLM.

:func:`open_rgb` is the one place where ants decodes an image; the manifest stage
(:func:`ants.datasets.manifests.build_manifest` via :func:`check_image`), the CLIP encoder
(:mod:`ants.encoders`) and the MLLM backends (:func:`ants.mllm.hf.load_image`,
:mod:`ants.mllm.openai_http`) all use it, so an image that passes the manifest check is exactly
the image that gets encoded and shown to the MLLM. In the workflow the pixel limit is the
``data.max_pixels`` setting of ``params.yaml`` (manifest and encoding; the MLLM backends use the
default).

What it does, in order:

1. **Size first.** The header is read (``PIL.Image.open`` is lazy) and an image with more than
   ``max_pixels`` pixels (width x height; default :data:`DEFAULT_MAX_PIXELS`, 100 million) is
   refused *before* its pixels are decoded, with an error naming the file, its size and the
   limit. Pillow's own decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) is raised to
   ``max_pixels`` when that is larger, so the ants limit is the one that applies; its errors
   are reported the same way. ``max_pixels=None`` disables the check.
2. **Decode** (``load()``); a truncated or corrupt file raises, naming the file.
3. **To 8-bit RGB**, by mode:

   * 8-bit modes (``RGB``, ``L``, ``P``, ``RGBA``, ``LA``, ``CMYK``, ``YCbCr``, ``1``, ...):
     Pillow's ``convert("RGB")`` (alpha is dropped; palette images with transparency go
     through ``RGBA``). 16-bit-per-channel colour PNGs are opened by Pillow as 8-bit ``RGB``
     already (the high byte), which is this same scaling within 1.
   * 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and 32-bit integer (``I``)
     images are **scaled by their bit depth**: ``v8 = round(v * 255 / (2**bits - 1))``, where
     ``2**bits - 1`` is the largest value of the file's declared type (TIFF ``BitsPerSample``,
     and ``2**(bits-1) - 1`` for signed ``SampleFormat``; 16 bits for the ``I;16`` modes and,
     for an ``I`` image without a declared depth, when all values fit in 16 bits). (Pillow's own
     ``convert`` clips such values at 255, which turns almost every pixel white.) Negative
     values, or values above the declared depth, are refused.
   * 32-bit float grey (``F``) images are scaled from **[0, 1]**: ``v8 = round(v * 255)``.
     Values outside [0, 1] or NaN / infinity are refused (the intended range is unknown):
     convert such files to 8-bit yourself.
   * Anything else Pillow cannot convert is refused, naming the mode.

The EXIF orientation is NOT applied (as in open_clip's and torchvision's loaders, which the
published numbers used).

Errors are :class:`ImageError` (a ``ValueError``) with ``path`` and ``reason``; the message is
``"<path>: <reason>"``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageError",
    "check_image",
    "failure_reason",
    "is_scaled_mode",
    "open_rgb",
    "to_rgb",
]

#: Default pixel limit (width x height) of :func:`open_rgb`: 100 million pixels, i.e. about
#: 300 MB once decoded to RGB; the photos of the benchmark sets are far below it.
DEFAULT_MAX_PIXELS = 100_000_000

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


class ImageError(ValueError):
    """An image file that cannot be used: too large, undecodable or of an unusable mode."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


def _tag(img: Image.Image, tag: int) -> int | None:
    tags = getattr(img, "tag_v2", None)
    if tags is None:
        return None
    value = tags.get(tag)
    if isinstance(value, tuple):
        value = value[0] if value else None
    return int(value) if value else None


def _declared_top(img: Image.Image) -> tuple[int, int] | None:
    """``(bits, largest value)`` a TIFF declares (BitsPerSample, SampleFormat), else None."""
    bits = _tag(img, 258)
    if bits is None:
        return None
    signed = _tag(img, 339) == 2  # SampleFormat 2: signed integer
    return bits, (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1


def _scale_integer(img: Image.Image, path: str | os.PathLike) -> Image.Image:
    arr = np.asarray(img)
    if arr.size == 0:
        raise ImageError(path, f"empty {img.mode} image")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0:
        raise ImageError(
            path,
            f"integer image (mode {img.mode}) with negative values (min {lo}); "
            f"convert it to 8-bit RGB",
        )
    declared = _declared_top(img)
    if declared is None:
        if img.mode not in _SIXTEEN_BIT_MODES and hi > 0xFFFF:
            raise ImageError(
                path,
                f"integer image (mode {img.mode}) with values up to {hi} and no declared "
                f"bit depth; convert it to 8-bit RGB",
            )
        declared = (16, 0xFFFF)
    bits, top = declared
    if hi > top:
        raise ImageError(
            path, f"integer image (mode {img.mode}) declares {bits} bits but holds the value {hi}"
        )
    scaled = np.floor(arr.astype(np.float64) * (255.0 / top) + 0.5)
    return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8)).convert("RGB")


def _scale_float(img: Image.Image, path: str | os.PathLike) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    if arr.size == 0:
        raise ImageError(path, "empty float image")
    if not np.isfinite(arr).all():
        raise ImageError(
            path, "float image (mode F) holds NaN or infinite values; convert it to 8-bit RGB"
        )
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        raise ImageError(
            path,
            f"float image (mode F) with values in [{lo:g}, {hi:g}]; only [0, 1] is "
            f"supported (scaled by 255): convert it to 8-bit RGB",
        )
    scaled = np.floor(arr * 255.0 + 0.5)
    return Image.fromarray(scaled.astype(np.uint8)).convert("RGB")


def is_scaled_mode(mode: str) -> bool:
    """Whether :func:`to_rgb` scales images of this PIL mode by their value range (16-bit and
    32-bit integer, float) instead of Pillow's 8-bit ``convert("RGB")``: a consumer that
    decodes such a file itself would not see what ants sees."""
    return mode in _SIXTEEN_BIT_MODES or mode in ("I", "F")


def to_rgb(img: Image.Image, path: str | os.PathLike = "<image>") -> Image.Image:
    """A decoded PIL image as 8-bit RGB, by the rules of the module docstring."""
    mode = img.mode
    if mode == "RGB":
        return img
    if is_scaled_mode(mode):
        return _scale_float(img, path) if mode == "F" else _scale_integer(img, path)
    try:
        if mode in ("P", "PA") and "transparency" in img.info:
            return img.convert("RGBA").convert("RGB")
        return img.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(path, f"cannot convert an image of mode {mode!r} to RGB ({exc})") from exc


def _check_pixels(width: int, height: int, max_pixels: int | None, path) -> None:
    if max_pixels is not None and width * height > max_pixels:
        raise ImageError(
            path,
            f"image of {width} x {height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} pixels (max_pixels); refused before decoding. Raise the limit if the "
            f"file is genuine",
        )


def open_rgb(
    path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Open, size-check, decode and convert one image file to 8-bit RGB (module docstring).

    Raises :class:`ImageError` naming the file for every failure.
    """
    if max_pixels is not None and (isinstance(max_pixels, bool) or int(max_pixels) < 1):
        raise ValueError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and (max_pixels is None or max_pixels > limit):
        Image.MAX_IMAGE_PIXELS = max_pixels  # let the ants limit decide (documented)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _check_pixels(img.width, img.height, max_pixels, path)
                img.load()
                out = to_rgb(img, path)
                if out is img:
                    out = img.copy()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(
            path,
            f"image exceeds the limit of {max_pixels:,} pixels (max_pixels); refused "
            f"before decoding (Pillow: {exc})",
        ) from exc
    except FileNotFoundError as exc:
        raise ImageError(path, "FileNotFoundError: file not found") from exc
    except Exception as exc:  # noqa: BLE001 - every decoding failure names the file
        raise ImageError(path, f"{type(exc).__name__}: {exc}") from exc
    return out


def failure_reason(err: BaseException) -> str:
    """Why an image could not be used, in one line and without its path: an
    :class:`ImageError`'s reason, else ``"<ExceptionType>: <message>"``."""
    if isinstance(err, ImageError):
        return err.reason
    return f"{type(err).__name__}: {err}"


def check_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> str:
    """``""`` if :func:`open_rgb` accepts the file, else the reason (without the path).

    Decoding errors keep the decoder's exception type in front, e.g.
    ``"UnidentifiedImageError: cannot identify image file ..."``.
    """
    try:
        open_rgb(path, max_pixels=max_pixels)
    except ImageError as exc:
        return exc.reason
    return ""
