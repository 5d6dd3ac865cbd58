"""ants.datasets.download against local HTTP servers on 127.0.0.1: resume, retries, timeouts,
one-line errors, mirrors and extracted copies; and the extraction guards."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from ants.datasets import DatasetError
from ants.datasets.download import ChecksumError, fetch_archive, obtain_dataset
from ants.datasets.extract import extract_archive
from ants.datasets.manifests import build_manifest, check_count, list_flat
from ants.datasets.registry import KNOWN_DATASETS

# ------------------------------------------------------------------------------------------
# fixtures: a generated archive and a scriptable server


def _archive_bytes(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in {"Set/images/a.bin": rng.bytes(150_000), "Set/images/b.bin": rng.bytes(50_000)}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


DATA = _archive_bytes()
SHA = "sha256:" + hashlib.sha256(DATA).hexdigest()


class Server:
    """A ThreadingHTTPServer whose behaviour per path is a function of (handler, request count)."""

    def __init__(self):
        self.routes = {}
        self.log: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.log.append((self.path, self.headers.get("Range")))
                count = sum(1 for p, _ in server.log if p == self.path)
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                try:
                    route(self, count)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def send(handler, data: bytes = DATA, *, honour_range: bool = True, cut_at: int | None = None,
         pause: float = 0.0, chunk: int = 1 << 16):
    """Answer with ``data`` (206 for a Range request if ``honour_range``); ``cut_at``: close after
    that many body bytes although Content-Length promised all."""
    rng = handler.headers.get("Range")
    start = 0
    if rng and honour_range:
        start = int(rng.split("=")[1].split("-")[0])
        handler.send_response(206)
        handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    else:
        handler.send_response(200)
    body = data[start:]
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    limit = len(body) if cut_at is None else cut_at
    for i in range(0, limit, chunk):
        handler.wfile.write(body[i:min(i + chunk, limit)])
        handler.wfile.flush()
        if pause:
            time.sleep(pause)


def fetch(url, dest, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("sleep", lambda s: None)
    kw.setdefault("dataset", "sun")
    return fetch_archive(url, dest, SHA, **kw)


# ------------------------------------------------------------------------------------------
# downloads


def test_plain_download_and_reuse(server, tmp_path):
    server.routes["/SUN.tar.gz"] = lambda h, n: send(h)
    dest = fetch(server.url("/SUN.tar.gz"), tmp_path / "SUN.tar.gz")
    assert dest.read_bytes() == DATA
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SUN.tar.gz"]
    assert dest.stat().st_mode & 0o777 == 0o666 & ~_umask()
    fetch(server.url("/SUN.tar.gz"), dest)  # right checksum already there: no request
    assert len(server.log) == 1


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_interrupted_download_resumes_with_range_on_the_next_run(server, tmp_path):
    server.routes["/SUN.tar.gz"] = lambda h, n: send(h, cut_at=120_000 if n == 1 else None)
    dest = tmp_path / "SUN.tar.gz"
    with pytest.raises(DatasetError) as info:
        fetch(server.url("/SUN.tar.gz"), dest, retries=0)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"dataset 'sun': cannot download {server.url('/SUN.tar.gz')}: the connection closed "
                          f"after 120,000 of {len(DATA):,} bytes (gave up after 1 attempts")
    assert "datasets.sun.mirror" in msg and "datasets.sun.extracted" in msg
    part = tmp_path / "SUN.tar.gz.part"
    assert part.stat().st_size == 120_000 and not dest.exists()
    # the next run resumes from byte 120000 and leaves exactly the archive
    fetch(server.url("/SUN.tar.gz"), dest)
    assert dest.read_bytes() == DATA
    assert server.log == [("/SUN.tar.gz", None), ("/SUN.tar.gz", "bytes=120000-")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SUN.tar.gz"]


def test_transient_errors_are_retried_with_backoff_and_resume(server, tmp_path, caplog):
    def flaky(h, n):
        if n <= 2:
            h.send_error(503, "Busy")
        elif n == 3:
            send(h, cut_at=70_000)
        else:
            send(h)

    server.routes["/SUN.tar.gz"] = flaky
    waits = []
    caplog.set_level(logging.WARNING, logger="ants.datasets")
    fetch(server.url("/SUN.tar.gz"), tmp_path / "SUN.tar.gz", sleep=waits.append, backoff=0.5)
    assert (tmp_path / "SUN.tar.gz").read_bytes() == DATA
    assert waits == [0.5, 1.0, 2.0]  # backoff * 2**k
    assert [r for _, r in server.log] == [None, None, None, "bytes=70000-"]
    assert "HTTP 503 Busy" in caplog.records[0].getMessage()
    assert "resuming from byte 70,000" in caplog.records[2].getMessage()


def test_server_that_ignores_range_gets_a_full_download(server, tmp_path):
    server.routes["/SUN.tar.gz"] = lambda h, n: send(h, honour_range=False)
    part = tmp_path / "SUN.tar.gz.part"
    part.write_bytes(DATA[:5000])
    fetch(server.url("/SUN.tar.gz"), tmp_path / "SUN.tar.gz")
    assert (tmp_path / "SUN.tar.gz").read_bytes() == DATA
    assert server.log == [("/SUN.tar.gz", "bytes=5000-")]
    assert not part.exists()


def test_a_stale_part_file_is_redownloaded_once_when_the_checksum_fails(server, tmp_path):
    server.routes["/SUN.tar.gz"] = lambda h, n: send(h)
    (tmp_path / "SUN.tar.gz.part").write_bytes(b"x" * 1000)  # bytes of some other file
    fetch(server.url("/SUN.tar.gz"), tmp_path / "SUN.tar.gz")
    assert (tmp_path / "SUN.tar.gz").read_bytes() == DATA
    assert [r for _, r in server.log] == ["bytes=1000-", None]
    # a server with the wrong bytes: ChecksumError, nothing left behind
    server.routes["/other.tar.gz"] = lambda h, n: send(h, _archive_bytes(1))
    with pytest.raises(ChecksumError, match="sha256 checksum mismatch"):
        fetch(server.url("/other.tar.gz"), tmp_path / "o" / "other.tar.gz")
    assert list((tmp_path / "o").iterdir()) == []


def test_permanent_errors_are_one_line_without_retries(server, tmp_path):
    waits = []
    with pytest.raises(DatasetError) as info:
        fetch(server.url("/missing.tar.gz"), tmp_path / "missing.tar.gz", sleep=waits.append)
    assert str(info.value).startswith(f"dataset 'sun': cannot download {server.url('/missing.tar.gz')}: "
                                      f"HTTP 404 Not Found; check the URL (datasets.sun.url)")
    assert waits == [] and len(server.log) == 1

    def to_file(h, n):
        h.send_response(302)
        h.send_header("Location", "file:///etc/passwd")
        h.end_headers()

    server.routes["/evil"] = to_file
    with pytest.raises(DatasetError, match=r"redirected to file:///etc/passwd; refusing a redirect from http to file"):
        fetch(server.url("/evil"), tmp_path / "evil")

    def to_ok(h, n):
        h.send_response(301)
        h.send_header("Location", "/SUN.tar.gz")
        h.end_headers()

    server.routes["/old"] = to_ok
    server.routes["/SUN.tar.gz"] = lambda h, n: send(h)
    assert fetch(server.url("/old"), tmp_path / "SUN.tar.gz").read_bytes() == DATA

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(DatasetError) as info:
        fetch(f"http://127.0.0.1:{port}/x.tar.gz", tmp_path / "x.tar.gz", sleep=waits.append)
    assert f"cannot download http://127.0.0.1:{port}/x.tar.gz: connection refused" in str(info.value)
    assert waits == []
    with pytest.raises(DatasetError, match="unsupported URL scheme 'ftp'"):
        fetch("ftp://example.org/x.tar.gz", tmp_path / "x.tar.gz")


def test_the_timeout_is_wall_clock_not_per_read(server, tmp_path):
    """A server trickling a byte every 0.2 s (each read succeeds) is still cut off."""
    def trickle(h, n):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        for _ in range(1000):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.2)

    def slow_headers(h, n):
        h.wfile.write(b"HTTP/1.0 200 OK\r\n")
        for _ in range(1000):
            h.wfile.write(b"X")
            h.wfile.flush()
            time.sleep(0.2)

    server.routes["/trickle"] = trickle
    server.routes["/slowheaders"] = slow_headers
    server.routes["/hang"] = lambda h, n: time.sleep(10)
    for path, reason in [("/trickle", r"too slow: \d+ bytes in 1 s \(below 1024 bytes/s for 1 s\)"),
                         ("/slowheaders", r"no complete response within 1 s"),
                         ("/hang", r"no complete response within 1 s")]:
        t0 = time.monotonic()
        with pytest.raises(DatasetError, match=rf"cannot download {server.url(path)}: {reason} \(gave up after 2"):
            fetch(server.url(path), tmp_path / path.strip("/"), timeout=1.0, retries=1)
        assert time.monotonic() - t0 < 5  # two attempts of ~1 s each, not 200 s


def test_a_killed_download_process_resumes_in_the_next_run(server, tmp_path):
    """A real interruption: the downloading process is SIGKILLed halfway."""
    half = len(DATA) // 2

    def slow_second_half(h, n):
        if n == 1:  # first half quickly, then stall until killed
            send(h, cut_at=half)
            time.sleep(30)
        else:
            send(h)

    server.routes["/SUN.tar.gz"] = slow_second_half
    dest = tmp_path / "SUN.tar.gz"
    code = (f"from ants.datasets.download import fetch_archive\n"
            f"fetch_archive({server.url('/SUN.tar.gz')!r}, {str(dest)!r}, {SHA!r}, progress=False, timeout=60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    part = tmp_path / "SUN.tar.gz.part"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size >= half):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert part.stat().st_size == half and not dest.exists()
    fetch(server.url("/SUN.tar.gz"), dest)
    assert dest.read_bytes() == DATA
    assert server.log[-1] == ("/SUN.tar.gz", f"bytes={half}-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SUN.tar.gz"]


def test_download_progress_goes_to_the_log_when_not_a_terminal(server, tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("ANTS_PROGRESS", "log")
    server.routes["/SUN.tar.gz"] = lambda h, n: send(h, chunk=20_000, pause=0.12)  # ~1.3 s
    caplog.set_level(logging.INFO, logger="ants.progress")
    fetch(server.url("/SUN.tar.gz"), tmp_path / "SUN.tar.gz", progress=True)
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs and msgs[-1].startswith(f"download SUN.tar.gz: done, {len(DATA) / 1000:.1f} kB in ")


def test_mirror_folder_and_file_urls(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "SUN.tar.gz").write_bytes(DATA)
    got = fetch("http://unreachable.invalid/SUN.tar.gz", tmp_path / "dl" / "SUN.tar.gz", mirror=mirror)
    assert got == mirror / "SUN.tar.gz"  # used in place, checksum checked, nothing downloaded
    (mirror / "SUN.tar.gz").write_bytes(DATA[:-1])
    with pytest.raises(ChecksumError, match=r"mirror/SUN.tar.gz: sha256 checksum mismatch"):
        fetch("http://unreachable.invalid/SUN.tar.gz", tmp_path / "dl" / "SUN.tar.gz", mirror=mirror)
    with pytest.raises(DatasetError, match=r"dataset 'sun': the mirror folder .*nowhere has no SUN.tar.gz "
                                           r"\(datasets.sun.mirror\)"):
        fetch("http://unreachable.invalid/SUN.tar.gz", tmp_path / "dl" / "SUN.tar.gz", mirror=tmp_path / "nowhere")
    src = tmp_path / "SUN.tar.gz"
    src.write_bytes(DATA)
    assert fetch(src.as_uri(), tmp_path / "f" / "SUN.tar.gz").read_bytes() == DATA


def test_obtain_dataset_downloads_extracts_or_uses_an_extracted_copy(server, tmp_path):
    server.routes["/SUN.tar.gz"] = lambda h, n: send(h)
    cfg = {"source": "download", "url": server.url("/SUN.tar.gz"), "checksum": SHA, "root": "Set/images",
           "download": {"retries": 0, "timeout": 5}, "extract": {"max_ratio": 50}}
    out = obtain_dataset("sun", cfg, tmp_path / "dl", progress=False)
    assert out == tmp_path / "dl" / "extracted"
    assert [p for p, _ in list_flat(out / "Set/images", (".bin",))] == ["a.bin", "b.bin"]
    assert (out / "Set").stat().st_mode & 0o777 == 0o777 & ~_umask()
    # an extracted copy elsewhere stands in: linked, not copied; no request made
    copy = tmp_path / "copy"
    (copy / "Set" / "images").mkdir(parents=True)
    (copy / "Set" / "images" / "z.bin").write_bytes(b"z")
    n = len(server.log)
    out2 = obtain_dataset("sun", {**cfg, "extracted": str(copy)}, tmp_path / "dl", progress=False)
    assert out2.is_symlink() and out2.resolve() == copy.resolve()
    assert [p for p, _ in list_flat(out2 / "Set/images", (".bin",))] == ["z.bin"]
    assert len(server.log) == n
    with pytest.raises(DatasetError, match=r"datasets.sun.extracted: .*copy has no Other/images \(datasets.sun.root\)"):
        obtain_dataset("sun", {**cfg, "extracted": str(copy), "root": "Other/images"}, tmp_path / "dl")
    # and back to the download: the link is replaced by a real folder
    out3 = obtain_dataset("sun", cfg, tmp_path / "dl", progress=False)
    assert not out3.is_symlink() and (out3 / "Set/images/a.bin").is_file()
    # the params key extract.max_bytes is what the refusal names
    with pytest.raises(DatasetError, match=r"above the limit of 1,000 bytes \(datasets\.sun\.extract\.max_bytes\)"):
        obtain_dataset("sun", {**cfg, "extract": {"max_bytes": 1000}}, tmp_path / "dl2", progress=False)
    assert not (tmp_path / "dl2" / "extracted").exists()


def test_ants_download_of_a_missing_url_is_one_line_and_exit_2(server, tmp_path):
    url = server.url("/gone/SUN.tar.gz")  # no route: the server answers 404
    cfg = {"source": "download", "url": url, "checksum": SHA, "root": "Set/images", "layout": "flat",
           "download": {"retries": 0, "timeout": 5}}
    proc = subprocess.run(
        [Path(sys.executable).with_name("ants"), "-q", "download", "--dataset", "sun",
         "--dataset-json", json.dumps(cfg), "--out", str(tmp_path / "dl")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.endswith("\n") and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"ants download: error: dataset 'sun': cannot download {url}: HTTP 404 ")
    assert "Traceback" not in proc.stderr and "datasets.sun.url" in proc.stderr
    assert server.log == [("/gone/SUN.tar.gz", None)]
    assert not (tmp_path / "dl" / "extracted").exists()


# ------------------------------------------------------------------------------------------
# extraction guards


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _link(name: str, target: str, kind=tarfile.LNKTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_hardlink_targets_are_checked_from_the_archive_root(tmp_path):
    # 'sub/hl -> ../outside': as a hardlink the target is ../outside from the ROOT: outside
    evil = _tar(tmp_path / "hl.tar", [("sub/a.txt", b"a"), _link("sub/hl", "../outside")], "w")
    with pytest.raises(DatasetError, match=r"hl.tar: hardlink 'sub/hl' -> '../outside' points outside the "
                                           r"extracted folder \(hardlink targets are relative to the archive root\)"):
        extract_archive(evil, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))
    ok = _tar(tmp_path / "ok.tar", [("sub/a.txt", b"a"), _link("sub/hl", "sub/a.txt"),
                                    _link("sub/sl", "a.txt", tarfile.SYMTYPE)], "w")
    out = extract_archive(ok, tmp_path / "ok")
    assert (out / "sub/hl").read_text() == "a" and (out / "sub/sl").read_text() == "a"
    sym = _tar(tmp_path / "sl.tar", [_link("sub/sl", "../../etc/passwd", tarfile.SYMTYPE)], "w")
    with pytest.raises(DatasetError, match=r"symlink 'sub/sl' -> '../../etc/passwd' points outside"):
        extract_archive(sym, tmp_path / "s")


def test_special_files_and_damaged_archives_name_the_archive(tmp_path):
    fifo = tarfile.TarInfo("dev/fifo")
    fifo.type = tarfile.FIFOTYPE
    arch = _tar(tmp_path / "fifo.tar.gz", [fifo])
    with pytest.raises(DatasetError, match=r"dataset 'x': .*fifo.tar.gz: member 'dev/fifo' is a FIFO"):
        extract_archive(arch, tmp_path / "f", dataset="x")
    good = _tar(tmp_path / "g.tar.gz", [("a.bin", np.random.default_rng(0).bytes(100_000))])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[:30_000])
    with pytest.raises(DatasetError, match=r"cut.tar.gz: the archive is damaged or truncated .*delete it and run again"):
        extract_archive(cut, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_size_and_ratio_limits(tmp_path):
    zeros = _tar(tmp_path / "bomb.tar.gz", [("z.bin", bytes(8 << 20))])  # 8 MiB of zeros -> ~8 kB
    with pytest.raises(DatasetError, match=r"bomb.tar.gz: 8,388,608 bytes from a [\d,]+-byte archive is a "
                                           r"compression ratio of \d+:1, above the limit of 200:1 \(max_ratio\)"):
        extract_archive(zeros, tmp_path / "b")
    assert extract_archive(zeros, tmp_path / "b", max_ratio=1e6) == tmp_path / "b"
    with pytest.raises(DatasetError, match=r"would write 8,388,608 bytes, above the limit of 4,000,000 bytes"):
        extract_archive(zeros, tmp_path / "b2", max_ratio=1e6, expected_bytes=1_000_000)  # 4 x expected
    with pytest.raises(DatasetError, match=r"above the limit of 1,000 bytes \(max_bytes\); refusing"):
        extract_archive(zeros, tmp_path / "b3", max_ratio=1e6, max_bytes=1000)
    # for a dataset, the messages name its params.yaml keys
    with pytest.raises(DatasetError, match=r"^dataset 'sun': .*bomb.tar.gz: extracting it would write 8,388,608 "
                                           r"bytes, above the limit of 1,000 bytes "
                                           r"\(datasets\.sun\.extract\.max_bytes\); refusing"):
        extract_archive(zeros, tmp_path / "b4", dataset="sun", max_ratio=1e6, max_bytes=1000)
    with pytest.raises(DatasetError, match=r"above the limit of 200:1 \(datasets\.sun\.extract\.max_ratio\)"):
        extract_archive(zeros, tmp_path / "b5", dataset="sun")
    zpath = tmp_path / "bomb.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("z.bin", bytes(4 << 20))
        zf.writestr("r.bin", np.random.default_rng(0).bytes(200_000))
    with pytest.raises(DatasetError, match=r"bomb.zip: member 'z.bin' expands [\d,]+ -> 4,194,304 bytes"):
        extract_archive(zpath, tmp_path / "zb", max_ratio=30)  # overall ratio ~20 passes, the member does not
    with pytest.raises(DatasetError, match=r"above the limit of 30:1, datasets\.sun\.extract\.max_ratio\)"):
        extract_archive(zpath, tmp_path / "zb", dataset="sun", max_ratio=30)


# ------------------------------------------------------------------------------------------
# registry and counts


def test_known_datasets_table_covers_the_benchmarks():
    mos = {k for k, v in KNOWN_DATASETS.items() if v["benchmark"] == "mos4"}
    assert mos == {"imagenet_val", "inaturalist", "sun", "places", "textures"}
    oo = {k: v["expected_images"] for k, v in KNOWN_DATASETS.items() if v["benchmark"] == "openood_v15"}
    assert oo == {"openood_imagenet_test": 45_000, "ssb_hard": 49_000, "ninco": 5_879,
                  "openood_inaturalist": 10_000, "openood_textures": 5_160, "openimage_o": 15_869}
    assert KNOWN_DATASETS["textures"]["expected_images"] == 5_640
    for name, entry in KNOWN_DATASETS.items():
        assert entry["source"] in ("download", "user path"), name
        if entry["source"] == "download":
            assert entry["url"].endswith(".tar.gz") and entry["checksum"].split(":")[0] in ("md5", "sha256")
        else:
            assert entry["instructions"], name
    assert "image-net.org" in KNOWN_DATASETS["imagenet_val"]["instructions"]
    assert "benchmark_imglist/imagenet/test_ssb_hard.txt" == KNOWN_DATASETS["ssb_hard"]["list"]
    assert {v.get("label_set") for v in KNOWN_DATASETS.values()} >= {"cub200", "stanford_cars", "food101", "oxford_pets"}


def test_count_check_warns_with_the_difference(tmp_path, caplog):
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (4, 4)).save(tmp_path / f"{i}.png")
    caplog.set_level(logging.WARNING, logger="ants.datasets")
    build_manifest("sun", list_flat(tmp_path, (".png",)), tmp_path, progress=False, expected_images=10_000)
    assert caplog.records[-1].getMessage().startswith(
        "dataset 'sun': 3 images listed, expected 10,000 (9,997 fewer); check the extraction")
    assert check_count("x", 12, 10).startswith("dataset 'x': 12 images listed, expected 10 (2 more)")
    assert check_count("x", 10, 10) is None and check_count("x", 3, None) is None
