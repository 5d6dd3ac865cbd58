"""Dataset listing, manifests, checksum-checked downloads and safe extraction (ants.datasets)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ants.artifacts import read_manifest, write_manifest
from ants.datasets import DatasetError
from ants.datasets.download import ChecksumError, fetch_archive
from ants.datasets.extract import extract_archive
from ants.datasets.manifests import (
    build_manifest,
    list_class_folders,
    list_flat,
    read_image_list,
)
from ants.stages import build_dataset_manifest, download_dataset


def png(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(path)
    return path


def test_read_image_list(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("# comment\n\na/1.png 3\nb/2.png\n")
    assert read_image_list(lst) == [("a/1.png", 3), ("b/2.png", -1)]
    lst.write_text("a.png x\n")
    with pytest.raises(DatasetError, match=r"list\.txt:1: the label 'x' is not an integer"):
        read_image_list(lst)
    lst.write_text("a.png 1 2\n")
    with pytest.raises(DatasetError, match=r"list\.txt:1: expected 'path \[label\]', got 'a.png 1 2'"):
        read_image_list(lst)
    lst.write_text("\n# only comments\n")
    with pytest.raises(DatasetError, match="the image list is empty"):
        read_image_list(lst)
    with pytest.raises(DatasetError, match="dataset 'x': image list not found"):
        read_image_list(tmp_path / "nope.txt", "x")


def test_class_folders_index_classes_in_sorted_order(tmp_path):
    for rel in ("n02/b.JPEG", "n02/a.jpeg", "n01/z.png", "n01/notes.txt", "n03/sub/c.jpg"):
        (png if not rel.endswith(".txt") else lambda p: p.write_text("x"))(tmp_path / rel)
    got = list_class_folders(tmp_path, (".jpeg", ".png", ".jpg"))
    assert got == [("n01/z.png", 0), ("n02/a.jpeg", 1), ("n02/b.JPEG", 1), ("n03/sub/c.jpg", 2)]
    with pytest.raises(DatasetError, match=r"dataset 'v': image folder not found: .*missing"):
        list_class_folders(tmp_path / "missing", dataset="v")


def test_flat_lists_every_image_below_root(tmp_path):
    png(tmp_path / "images" / "b.jpg")
    png(tmp_path / "images" / "a" / "c.png")
    (tmp_path / "images" / "README").write_text("x")
    assert list_flat(tmp_path / "images", (".jpg", ".png")) == [("a/c.png", -1), ("b.jpg", -1)]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"no image files \(.jpg\) below"):
        list_flat(tmp_path / "empty", (".jpg",))


def test_manifest_records_hashes_and_unreadable_images(tmp_path):
    good = png(tmp_path / "a" / "good.png", 7)
    bad = tmp_path / "a" / "bad.png"
    bad.write_bytes(b"this is not a png")
    frame = build_manifest("ds", [("a/good.png", 1), ("a/bad.png", 0)], tmp_path, class_names=["x", "y"],
                           progress=False)
    assert frame["id"].tolist() == ["ds/a/good.png", "ds/a/bad.png"]
    assert frame["sha256"][0] == hashlib.sha256(good.read_bytes()).hexdigest()
    assert frame["class_name"].tolist() == ["y", "x"]
    assert frame["readable"].tolist() == [True, False]
    assert frame["error"][0] == "" and frame["error"][1].startswith("UnidentifiedImageError")
    # without the check, nothing is decoded (and nothing is marked)
    unchecked = build_manifest("ds", [("a/bad.png", -1)], tmp_path, check_images=False, progress=False)
    assert unchecked["readable"].tolist() == [True]

    out = write_manifest(tmp_path / "m" / "ds.parquet", frame, {"dataset": "ds"})
    back, meta = read_manifest(out)
    assert meta == {"dataset": "ds"}
    assert back.equals(frame)


def test_manifest_errors_name_the_file(tmp_path):
    png(tmp_path / "x.png")
    with pytest.raises(DatasetError, match=r"dataset 'ds': image file not found: .*missing.png"):
        build_manifest("ds", [("missing.png", -1)], tmp_path, progress=False)
    with pytest.raises(DatasetError, match=r"x.png has label 5, but the label set has 2 classes"):
        build_manifest("ds", [("x.png", 5)], tmp_path, class_names=["a", "b"], progress=False)
    with pytest.raises(DatasetError, match="image 'ds/x.png' is listed twice"):
        build_manifest("ds", [("x.png", -1), ("x.png", -1)], tmp_path, progress=False)


def _tarball(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def _png_bytes(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_fetch_archive_checks_the_checksum(tmp_path):
    src = _tarball(tmp_path / "src.tar.gz", {"X/images/a.jpg": _png_bytes(1)})
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    dest = fetch_archive(src.as_uri(), tmp_path / "dl" / "X.tar.gz", f"sha256:{sha}")
    assert dest.read_bytes() == src.read_bytes()
    assert fetch_archive(src.as_uri(), tmp_path / "dl2" / "X.tar.gz", f"md5:{md5}").is_file()

    calls = []

    def never(url, target):
        calls.append(url)

    # a present file with the right checksum is not downloaded again
    fetch_archive("http://example.invalid/X.tar.gz", dest, f"sha256:{sha}", downloader=never)
    assert calls == []

    wrong = "0" * 64
    with pytest.raises(ChecksumError, match=rf"src.tar.gz: sha256 checksum mismatch: expected {wrong}, got {sha}"):
        fetch_archive(src.as_uri(), tmp_path / "dl3" / "X.tar.gz", f"sha256:{wrong}")
    assert list((tmp_path / "dl3").iterdir()) == []  # no partial file left behind
    with pytest.raises(ValueError, match="checksum must look like 'sha256:<hex>' or 'md5:<hex>'"):
        fetch_archive(src.as_uri(), tmp_path / "dl4" / "X.tar.gz", "crc:1")


def test_extract_archive_refuses_paths_outside_the_target(tmp_path):
    evil = _tarball(tmp_path / "evil.tar.gz", {"../escape.txt": b"x"})
    with pytest.raises(DatasetError, match=r"member '../escape.txt' would be extracted outside"):
        extract_archive(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    zpath = tmp_path / "ok.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("d/a.txt", "hello")
    assert (extract_archive(zpath, tmp_path / "z") / "d" / "a.txt").read_text() == "hello"
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(DatasetError, match="not a tar or zip archive"):
        extract_archive(tmp_path / "plain.txt", tmp_path / "p")


def test_downloaded_dataset_to_manifest_like_the_mos_sets(tmp_path, monkeypatch):
    """A MOS-style tarball (``Name/images/*.jpg``) served from a file:// URL."""
    src = _tarball(tmp_path / "iNaturalist.tar.gz",
                   {"iNaturalist/images/b.jpg": _png_bytes(2), "iNaturalist/images/a.jpg": _png_bytes(3)})
    cfg = {"source": "download", "url": src.as_uri(),
           "checksum": "sha256:" + hashlib.sha256(src.read_bytes()).hexdigest(),
           "layout": "flat", "root": "iNaturalist/images", "extensions": [".jpg"]}
    monkeypatch.chdir(tmp_path)
    extracted = download_dataset("inat", cfg, "results/data/downloads/inat")
    assert extracted == Path("results/data/downloads/inat/extracted")
    assert (Path("results/data/downloads/inat") / "iNaturalist.tar.gz").is_file()
    frame = build_dataset_manifest("inat", cfg, "results/manifests/inat.parquet", progress=False)
    assert frame["id"].tolist() == ["inat/a.jpg", "inat/b.jpg"]
    assert frame["path"][0] == "results/data/downloads/inat/extracted/iNaturalist/images/a.jpg"
    assert frame["label"].tolist() == [-1, -1] and frame["readable"].all()


def test_manifest_uses_the_shared_image_rules(tmp_path):
    """build_manifest decodes with ants.images: 16-bit PNGs are fine, huge ones are refused by name."""
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(tmp_path / "deep.png")
    png(tmp_path / "big.png")  # 8 x 8 = 64 pixels
    frame = build_manifest("ds", [("deep.png", -1), ("big.png", -1)], tmp_path, progress=False, max_pixels=63)
    assert frame["readable"].tolist() == [False, False]
    assert frame["error"][1] == ("image of 8 x 8 = 64 pixels exceeds the limit of 63 pixels (max_pixels); "
                                 "refused before decoding. Raise the limit if the file is genuine")
    ok = build_manifest("ds", [("deep.png", -1), ("big.png", -1)], tmp_path, progress=False)
    assert ok["readable"].tolist() == [True, True]
    Image.fromarray(np.array([[0.0, 2.0]], dtype=np.float32)).save(tmp_path / "hdr.tif")
    bad = build_manifest("ds", [("hdr.tif", -1)], tmp_path, progress=False)
    assert bad["error"][0].startswith("float image (mode F) with values in [0, 2]")


# ------------------------------------------------------------------------------------------
# one resolver: the config check, the manifest stage and the manifest rule agree on the list


@pytest.mark.parametrize("where", ["relative to root", "relative to the working directory", "absolute"])
def test_config_check_manifest_stage_and_manifest_rule_find_the_same_image_list(where, tmp_path,
                                                                                 monkeypatch):
    from ants.config import check_data, read_yaml
    from ants.datasets.location import dataset_location, manifest_sources

    root_dir = Path(__file__).resolve().parents[1]
    params = read_yaml(root_dir / "params.yaml")
    monkeypatch.chdir(tmp_path)
    for i in range(2):
        png(tmp_path / "data/mine/imgs" / f"{i}.png", 40 * i)
    lst = tmp_path / "data/mine/lists/mine.txt"
    lst.parent.mkdir(parents=True)
    lst.write_text("imgs/0.png\nimgs/1.png\n")
    given = {"relative to root": "lists/mine.txt",
             "relative to the working directory": "data/mine/lists/mine.txt",
             "absolute": str(lst)}[where]
    cfg = {"source": "local", "layout": "list", "root": "data/mine", "list": given}
    params["datasets"]["mine"] = cfg
    params["benchmarks"][params["run"]["benchmarks"][0]]["ood"]["far"].append("mine")

    root, found = dataset_location("mine", cfg)
    assert found.resolve() == lst.resolve() and root == Path("data/mine")
    assert [Path(p).resolve() for p in manifest_sources("mine", cfg)] == [lst.resolve()]
    assert not [p for p in check_data(params) if "datasets.mine" in p]
    frame = build_dataset_manifest("mine", cfg, tmp_path / "m.parquet", progress=False)
    assert frame["path"].tolist() == ["data/mine/imgs/0.png", "data/mine/imgs/1.png"]

    lst.unlink()  # now nowhere: all three say so
    assert manifest_sources("mine", cfg) == []
    assert [p for p in check_data(params) if p.startswith("datasets.mine.list:")]
    with pytest.raises(DatasetError, match="image list not found"):
        build_dataset_manifest("mine", cfg, tmp_path / "m.parquet", progress=False)


def test_the_resolver_names_an_unset_root_or_list():
    from ants.datasets.location import dataset_location, manifest_sources

    with pytest.raises(DatasetError, match=r"datasets.x.root is not set"):
        dataset_location("x", {"source": "local", "layout": "flat", "root": None})
    with pytest.raises(DatasetError, match=r"datasets.x.list is not set"):
        dataset_location("x", {"source": "local", "layout": "list", "root": "r", "list": None})
    assert manifest_sources("x", {"source": "local", "layout": "list", "root": None, "list": None}) == []
    demo, download = {"source": "demo", "split": "near"}, {"source": "download", "root": "Set/images"}
    assert manifest_sources("d", demo) == ["results/data/demo/near.txt"]
    assert manifest_sources("inat", download) == ["results/data/downloads/inat/extracted"]
    assert dataset_location("inat", download) == (
        Path("results/data/downloads/inat/extracted/Set/images"), None)
