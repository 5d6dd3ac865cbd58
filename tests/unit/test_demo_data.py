"""The generated demo image set (ants.demo_data)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ants.demo_data import FAR_KIND, ID_CLASSES, NEAR_CLASSES, DemoSpec, generate_demo, render

SMALL = DemoSpec(images_per_class=3, near_per_class=2, n_far=5, image_size=32, seed=0)


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, generate_demo(root, SMALL, progress=False)


def test_layout_lists_and_labels(demo):
    root, out = demo
    assert set(out) == {"classnames", "id", "near", "far"}
    assert out["classnames"].read_text().splitlines() == list(ID_CLASSES)
    id_lines = [line.split() for line in out["id"].read_text().splitlines()]
    assert len(id_lines) == SMALL.n_images("id") == 3 * 10
    for rel, label in id_lines:
        # the class folder of every ID image is the class of its label
        assert Path(rel).parts[:2] == ("id", ID_CLASSES[int(label)].replace(" ", "_"))
        assert (root / rel).is_file()
    for split, n in (("near", 2 * len(NEAR_CLASSES)), ("far", 5)):
        lines = [line.split() for line in out[split].read_text().splitlines()]
        assert len(lines) == n and {lab for _, lab in lines} == {"-1"}
        assert all((root / rel).is_file() for rel, _ in lines)


def test_images_are_small_rgb_pngs(demo):
    root, out = demo
    for split in ("id", "near", "far"):
        rel = out[split].read_text().split()[0]
        with Image.open(root / rel) as img:
            assert (img.format, img.mode, img.size) == ("PNG", "RGB", (32, 32))


def test_same_spec_gives_byte_identical_files_and_seed_changes_them(demo, tmp_path):
    root, _ = demo
    again = tmp_path / "again"
    generate_demo(again, SMALL, progress=False)
    assert digests(again) == digests(root)
    other = tmp_path / "other"
    generate_demo(other, DemoSpec(images_per_class=3, near_per_class=2, n_far=5, seed=1), progress=False)
    changed = [k for k, v in digests(other).items() if k.endswith(".png") and digests(root)[k] != v]
    assert len(changed) == SMALL.n_images("id") + SMALL.n_images("near") + SMALL.n_images("far")


def _dominant_colour_fraction(img: Image.Image) -> float:
    pixels = np.asarray(img).reshape(-1, 3)
    _, counts = np.unique(pixels, axis=0, return_counts=True)
    return counts.max() / len(pixels)


def test_far_ood_looks_nothing_like_the_drawn_classes():
    # drawn shapes and textures are flat colours (a few colours cover the image); the far-OOD
    # colour fields are smooth gradients where no single colour dominates
    rng = np.random.default_rng(0)
    for kind in ID_CLASSES + NEAR_CLASSES:
        assert _dominant_colour_fraction(render(kind, rng, 32)) > 0.2, kind
    for _ in range(10):
        assert _dominant_colour_fraction(render(FAR_KIND, rng, 32)) < 0.05


def test_near_ood_differs_from_its_id_cousin():
    a = np.asarray(render("circle", np.random.default_rng([0, 0, 0, 0]), 32))
    b = np.asarray(render("ellipse", np.random.default_rng([0, 0, 0, 0]), 32))
    assert not np.array_equal(a, b)


def test_bad_spec_and_kind_are_rejected():
    with pytest.raises(ValueError, match=r"DemoSpec.images_per_class must be an integer >= 1, got 0"):
        DemoSpec(images_per_class=0)
    with pytest.raises(ValueError, match=r"DemoSpec.image_size must be an integer in \[16, 512\], got 8"):
        DemoSpec(image_size=8)
    with pytest.raises(ValueError, match=r"unknown demo image kind 'hexagon'; valid: \["):
        render("hexagon", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown demo split 'test'"):
        SMALL.n_images("test")
    with pytest.raises(TypeError):
        DemoSpec.from_config({"images_per_class": 2, "colour": "red"})
