"""ants.images: one way to turn an image file into 8-bit RGB (manifest check and encoder)."""

from __future__ import annotations

import numpy as np
import pytest
from _images import png_header_only
from PIL import Image

from ants.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    check_image,
    failure_reason,
    is_scaled_mode,
    open_rgb,
)


def _grey(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img)
    assert img.mode == "RGB" and arr.dtype == np.uint8
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    return arr[..., 0].astype(int)


def test_16bit_png_gradient_matches_the_8bit_gradient(tmp_path):
    g8 = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    fine = np.tile(np.linspace(0, 65535, 1000).round().astype(np.uint16), (3, 1))
    for name, g16, want in [
        ("exact", g8.astype(np.uint16) * 257, g8.astype(int)),           # 0..255 -> 0..65535
        ("fine", fine, np.floor(fine / 65535 * 255 + 0.5).astype(int)),  # hand-computed rounding
    ]:
        path = tmp_path / f"{name}16.png"
        Image.fromarray(g16).save(path)
        with Image.open(path) as raw:
            assert raw.mode == "I;16"
            # Pillow's own conversion clips at 255: almost everything white (the bug this fixes)
            assert (np.asarray(raw.convert("RGB"))[..., 0] == 255).mean() > 0.9
        got = _grey(open_rgb(path))
        np.testing.assert_array_equal(got, want)
    # and against a real 8-bit PNG of the same gradient: within 1 everywhere
    p8 = tmp_path / "g8.png"
    Image.fromarray((np.linspace(0, 255, 1000)[None].repeat(3, 0)).round().astype(np.uint8)).save(p8)
    assert np.abs(_grey(open_rgb(tmp_path / "fine16.png")) - _grey(open_rgb(p8))).max() <= 1


def test_16bit_tiff_and_signed_32bit_tiff_scale_by_their_declared_depth(tmp_path):
    g8 = np.arange(256)
    p16 = tmp_path / "g16.tif"
    Image.fromarray((g8 * 257).astype(np.uint16)[None].repeat(2, 0)).save(p16)
    np.testing.assert_array_equal(_grey(open_rgb(p16))[0], g8)
    # mode I TIFF (BitsPerSample 32, SampleFormat signed): top value 2**31 - 1
    p32 = tmp_path / "g32.tif"
    Image.fromarray(np.round(g8 * ((2**31 - 1) / 255)).astype(np.int32)[None].repeat(2, 0)).save(p32)
    with Image.open(p32) as raw:
        assert raw.mode == "I"
    assert np.abs(_grey(open_rgb(p32))[0] - g8).max() <= 1
    neg = tmp_path / "neg.tif"
    Image.fromarray(np.array([[-5, 3]], dtype=np.int32)).save(neg)
    with pytest.raises(ImageError, match=r"neg\.tif: integer image \(mode I\) with negative values \(min -5\)"):
        open_rgb(neg)


def test_float_tiff_in_unit_range_and_out_of_range(tmp_path):
    values = np.array([[0.0, 0.25, 0.5, 0.999, 1.0, 1 / 255, 0.5 / 255]], dtype=np.float32)
    path = tmp_path / "f.tif"
    Image.fromarray(values).save(path)
    with Image.open(path) as raw:
        assert raw.mode == "F"
    # round(v * 255) by hand: 0, 63.75 -> 64, 127.5 -> 128, 254.745 -> 255, 255, 1, 0.5 -> 1
    assert _grey(open_rgb(path))[0].tolist() == [0, 64, 128, 255, 255, 1, 1]
    bad = tmp_path / "hdr.tif"
    Image.fromarray(np.array([[0.0, 3.5]], dtype=np.float32)).save(bad)
    with pytest.raises(ImageError, match=r"hdr\.tif: float image \(mode F\) with values in \[0, 3\.5\]; only \[0, 1\]"):
        open_rgb(bad)
    nan = tmp_path / "nan.tif"
    Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)).save(nan)
    assert check_image(nan) == "float image (mode F) holds NaN or infinite values; convert it to 8-bit RGB"


def test_huge_images_are_refused_by_name_before_decoding(tmp_path):
    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header_only(100_000, 100_000))  # 10^10 pixels claimed, 60 bytes on disk
    with pytest.raises(ImageError, match=r"huge\.png: image exceeds the limit of 100,000,000 pixels \(max_pixels\)"):
        open_rgb(huge)
    assert DEFAULT_MAX_PIXELS == 100_000_000
    # below Pillow's own guard: the ants limit, with the exact size in the message
    mid = tmp_path / "mid.png"
    mid.write_bytes(png_header_only(20_000, 10_000))  # 2 * 10^8 pixels
    assert check_image(mid, max_pixels=150_000_000) == (
        "image of 20000 x 10000 = 200,000,000 pixels exceeds the limit of 150,000,000 pixels "
        "(max_pixels); refused before decoding. Raise the limit if the file is genuine")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(small)
    assert "64 x 64 = 4,096 pixels exceeds the limit of 1,000" in check_image(small, max_pixels=1000)
    assert check_image(small) == ""


def test_the_ants_limit_wins_over_a_lower_pillow_limit(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((64, 64, 3), 9, np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone would refuse 4,096 pixels
    assert np.asarray(open_rgb(path, max_pixels=10_000)).max() == 9
    with pytest.raises(ValueError, match="max_pixels must be a positive integer or None, got 0"):
        open_rgb(path, max_pixels=0)


def test_other_modes_and_broken_files(tmp_path):
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([np.full((2, 2, 3), 40, np.uint8), np.zeros((2, 2), np.uint8)])).save(rgba)
    assert np.asarray(open_rgb(rgba)).tolist() == [[[40, 40, 40]] * 2] * 2  # alpha dropped
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 200, 100, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    ppath = tmp_path / "p.png"
    pal.save(ppath, transparency=0)
    assert np.asarray(open_rgb(ppath)).tolist() == [[[10, 20, 30], [200, 100, 0]]]
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    assert check_image(junk).startswith("UnidentifiedImageError: cannot identify image file")
    good = tmp_path / "t.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:400])
    with pytest.raises(ImageError, match=r"cut\.png: OSError: .*truncated"):
        open_rgb(cut)
    with pytest.raises(ImageError, match=r"missing\.png: FileNotFoundError: file not found"):
        open_rgb(tmp_path / "missing.png")


def test_8bit_files_decode_exactly_as_pillow_converts_them(tmp_path):
    """What the MLLM backends saw before they used open_rgb (plain ``convert("RGB")``) is what
    they see now for 8-bit files, so the demo's answers do not change."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    files = {
        "rgb.png": Image.fromarray(rgb),
        "grey.png": Image.fromarray(rgb[..., 0]),
        "rgba.png": Image.fromarray(np.dstack([rgb, rgb[..., 1]])),
        "pal.png": Image.fromarray(rgb).quantize(37),
        "photo.jpg": Image.fromarray(rgb),
    }
    for name, img in files.items():
        img.save(tmp_path / name)
        with Image.open(tmp_path / name) as raw:
            want = np.asarray(raw.convert("RGB"))
        got = open_rgb(tmp_path / name)
        assert got.mode == "RGB" and got.size == (23, 17), name
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=name)


def test_scaled_modes_and_failure_reasons():
    assert [m for m in ("RGB", "L", "P", "RGBA", "I;16", "I;16B", "I", "F", "CMYK") if is_scaled_mode(m)] == [
        "I;16", "I;16B", "I", "F"]
    assert failure_reason(ImageError("/x/a.png", "too big")) == "too big"
    assert failure_reason(OSError("disk gone")) == "OSError: disk gone"
