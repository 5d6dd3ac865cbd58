"""Fixture datasets laid out like the real ones (shared by tests/test_configs.py and
tests/test_documented_commands.py): ImageNet-style wnid class folders (1,000 of them), OpenOOD
image lists under ``images_largescale`` (Textures under ``images_classic``), fine-grained class
folders and a Stanford Cars list, a custom folder dataset with its label file. Every image is
the same valid 1 x 1 PNG: what is checked is the layout, not the pixels.

``make_fixture_data(base)`` with ``base = <project>/data`` lays them out exactly where the
shipped configs (configs/*.yaml) look by default.
"""

from __future__ import annotations

from pathlib import Path

PNG = bytes.fromhex(  # a valid 1 x 1 RGB PNG
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


def images(folder: Path, n: int, prefix: str = "img", ext: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{prefix}_{i:03d}{ext}"
        p.write_bytes(PNG)
        paths.append(p)
    return paths


def class_folders(root: Path, names: list[str], per_class: int = 1, ext: str = ".png") -> None:
    for name in names:
        images(root / name, per_class, prefix=name.replace(".", "_"), ext=ext)


def image_list(root: Path, list_path: Path, subdir: str, n: int, labels: list[int] | None) -> None:
    paths = images(root / subdir, n, ext=".JPEG")
    list_path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{p.relative_to(root).as_posix()} {labels[i % len(labels)] if labels else -1}"
        for i, p in enumerate(paths)
    ]
    list_path.write_text("\n".join(lines) + "\n")


def make_fixture_data(base: Path) -> dict:
    """Generate the fixture datasets below ``base``; return the config that points at them."""
    ds: dict = {}
    # ImageNet-1k val: one folder per wnid (1,000), as after valprep.sh
    class_folders(
        base / "imagenet" / "val", [f"n{1440764 + i:08d}" for i in range(1000)], ext=".JPEG"
    )
    ds["imagenet_val"] = {"root": str(base / "imagenet" / "val")}
    # OpenOOD v1.5: images_largescale/<set>/... (Textures: images_classic/texture/...) and
    # benchmark_imglist/imagenet/test_<set>.txt
    large = base / "openood" / "images_largescale"
    lists = base / "openood" / "benchmark_imglist" / "imagenet"
    for name, setname, labels in [
        ("openood_imagenet_test", "imagenet", [0, 1, 999]),
        ("ssb_hard", "ssb_hard", None),
        ("ninco", "ninco", None),
        ("openood_inaturalist", "inaturalist", None),
        ("openood_textures", "textures", None),
        ("openimage_o", "openimage_o", None),
    ]:
        sub = {"imagenet": "imagenet_1k/val", "textures": "texture"}.get(setname, setname)
        folder = (
            base / "openood" / "images_classic" if setname == "textures" else large
        )  # as OpenOOD
        image_list(folder, lists / f"test_{setname}.txt", sub, 3, labels)
        ds[name] = {"root": str(folder), "list": str(lists / f"test_{setname}.txt")}
    # fine-grained ID sets: class folders (CUB-200, Food-101, Pets) and a list (Stanford Cars)
    from ants.labels import load_label_set

    for name, folder_names in [
        (
            "cub200",
            [f"{i + 1:03d}.{c.replace(' ', '_')}" for i, c in enumerate(load_label_set("cub200"))],
        ),
        ("food101", [c.replace(" ", "_") for c in load_label_set("food101")]),
        ("oxford_pets", [c.replace(" ", "_") for c in load_label_set("oxford_pets")]),
    ]:
        class_folders(base / name / "test", folder_names)
        ds[name] = {"root": str(base / name / "test")}
    image_list(
        base / "stanford_cars", base / "stanford_cars" / "test_list.txt", "cars_test", 4, [0, 195]
    )
    ds["stanford_cars"] = {
        "root": str(base / "stanford_cars"),
        "list": str(base / "stanford_cars" / "test_list.txt"),
    }
    # a custom dataset: class folders for ID, a flat folder for OOD, a label file
    # (40 classes: configs/custom.yaml's ants_code takes the authors' near subset of 40 classes)
    classes = ["cat", "dog", "fox"] + [f"class {i:02d}" for i in range(3, 40)]
    class_folders(
        base / "custom" / "id",
        sorted(c.replace(" ", "_") for c in classes),
        per_class=2,
        ext=".jpg",
    )
    images(base / "custom" / "ood", 3, ext=".jpg")
    (base / "custom" / "classnames.txt").write_text("".join(f"{c}\n" for c in sorted(classes)))
    ds["custom_id"] = {"root": str(base / "custom" / "id")}
    ds["custom_ood"] = {"root": str(base / "custom" / "ood")}
    return {
        "datasets": ds,
        "label_sets": {"custom": {"file": str(base / "custom" / "classnames.txt")}},
    }
