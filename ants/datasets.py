"""Datasets -> manifests: which image files a dataset holds, their labels and content hashes.

A **manifest** is one Parquet table per dataset (``results/manifests/{dataset}.parquet``),
one row per image, in a deterministic order:

==============  ============================================================================
``id``          ``"{dataset}/{relative path}"``: stable across machines and moves
``path``        the file path used to open the image (as configured: relative paths are
                relative to the working directory)
``label``       ID class index (int64), ``-1`` when the dataset has no labels (OOD sets)
``class_name``  the label's class name, or ``""``
``sha256``      SHA-256 of the file's bytes (the MLLM answer cache keys on it)
``readable``    whether the file decoded as an image (``check_images``; else always True)
``error``       why it did not (exception type and message), or ``""``
==============  ============================================================================

The file format (these columns, the metadata, the validating reader) lives in
:mod:`ants.artifacts` (:func:`~ants.artifacts.write_manifest`, :func:`~ants.artifacts.read_manifest`).

Bad images are never dropped here: they are recorded (``readable`` / ``error``) and the
embedding job decides, per ``data.on_bad_image``, to fail naming them or to skip them.

Layouts (``params.yaml``, ``datasets.<name>.layout``):

* ``list``: an image list file, one ``relative/path label`` per line (OpenOOD's format; a
  missing label means -1); paths are relative to ``root``;
* ``class_folders``: one sub-folder of ``root`` per class; class index = position of the
  folder in sorted order (ImageNet val by wnid gives the standard class indices);
* ``flat``: every image file below ``root`` (recursively), label -1.

Images are decoded by :func:`ants.images.open_rgb` (the same code the encoder uses): huge
images are refused before decoding and 16-bit / float images are scaled to 8 bits (see
:mod:`ants.images`). A count that differs from the dataset's expected image count (the
published size, :data:`KNOWN_DATASETS`) is logged as a warning with the difference.

Downloads (:func:`fetch_archive`) resume interrupted transfers, retry transient failures,
bound every request in wall-clock time and check the configured checksum (``sha256:<hex>``
or ``md5:<hex>``) before the archive is moved into place; a local ``mirror`` folder or an
already ``extracted`` copy can stand in for the download (:func:`obtain_dataset`).
:func:`extract_archive` refuses members that would land outside the target folder, links
pointing outside, special files, and archives that would expand beyond a size or
compression-ratio limit.

:data:`KNOWN_DATASETS` lists the benchmark datasets (docs/METHOD.md section 9 and the
fine-grained ID sets): where they come from, their expected image counts, checksums, layout
and, for the registration-gated ones, what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import lzma
import os
import shutil
import socket
import ssl
import tarfile
import threading
import time
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

import ants
from ants._io import atomic_dir, atomic_path, file_digest
from ants.artifacts import MANIFEST_COLUMNS
from ants.images import DEFAULT_MAX_PIXELS
from ants.images import check_image as _check_image
from ants.progress import progress as _progress

log = logging.getLogger(__name__)

__all__ = [
    "KNOWN_DATASETS",
    "MANIFEST_COLUMNS",
    "ChecksumError",
    "DatasetError",
    "archive_name",
    "build_manifest",
    "check_count",
    "check_image",
    "extract_archive",
    "fetch_archive",
    "list_class_folders",
    "list_flat",
    "obtain_dataset",
    "parse_checksum",
    "read_image_list",
]

DEFAULT_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class DatasetError(ValueError):
    """A dataset cannot be listed (missing folder, bad list line, ...); names the file."""


class ChecksumError(DatasetError):
    """A downloaded file does not have the configured checksum."""


# --------------------------------------------------------------------------------------------
# hashing and image checks


def check_image(path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> str:
    """``""`` if :func:`ants.images.open_rgb` accepts the file, else why not.

    Decoding failures read ``"<ExceptionType>: <message>"``; refusals by ants (too many
    pixels, an unusable 16-bit / float range) say what and which limit.
    """
    return _check_image(path, max_pixels=max_pixels)


def check_count(dataset: str, n_images: int, expected: int | None) -> str | None:
    """Warn (log) when ``n_images`` differs from ``expected``; returns the message or None."""
    if expected is None or n_images == expected:
        return None
    diff = n_images - expected
    message = (
        f"dataset {dataset!r}: {n_images:,} images listed, expected {expected:,} "
        f"({abs(diff):,} {'more' if diff > 0 else 'fewer'}); check the extraction, the image list "
        f"or the extensions (datasets.{dataset}.expected_images is the published count)"
    )
    log.warning("%s", message)
    return message


# --------------------------------------------------------------------------------------------
# listing


def _has_ext(name: str, extensions: Sequence[str]) -> bool:
    return name.lower().endswith(tuple(e.lower() for e in extensions))


def _require_dir(root: Path, dataset: str) -> None:
    if not root.is_dir():
        raise DatasetError(f"dataset {dataset!r}: image folder not found: {root}")


def read_image_list(list_path: str | os.PathLike, dataset: str = "") -> list[tuple[str, int]]:
    """``[(relative path, label), ...]`` from an image list (``path [label]`` per line).

    Blank lines and ``#`` comments are skipped; a line with more than two fields or a label
    that is not an integer is an error naming the file and line.
    """
    list_path = Path(list_path)
    if not list_path.is_file():
        raise DatasetError(f"dataset {dataset!r}: image list not found: {list_path}")
    out: list[tuple[str, int]] = []
    with open(list_path, encoding="utf-8-sig") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) > 2:
                raise DatasetError(f"{list_path}:{lineno}: expected 'path [label]', got {line!r}")
            try:
                label = int(fields[1]) if len(fields) == 2 else -1
            except ValueError:
                raise DatasetError(
                    f"{list_path}:{lineno}: the label {fields[1]!r} is not an integer"
                ) from None
            out.append((fields[0], label))
    if not out:
        raise DatasetError(f"{list_path}: the image list is empty")
    return out


def list_class_folders(
    root: str | os.PathLike, extensions: Sequence[str] = DEFAULT_EXTENSIONS, dataset: str = ""
) -> list[tuple[str, int]]:
    """``[(relative path, class index), ...]``: class index = sorted position of the folder;
    sorted by class, then by path."""
    root = Path(root)
    _require_dir(root, dataset)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DatasetError(f"dataset {dataset!r}: {root} has no class sub-folders")
    out = []
    for index, name in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames.sort()
            for f in sorted(filenames):
                if _has_ext(f, extensions):
                    out.append((Path(dirpath, f).relative_to(root).as_posix(), index))
    if not out:
        raise DatasetError(
            f"dataset {dataset!r}: no image files ({', '.join(extensions)}) below {root}"
        )
    return sorted(out, key=lambda e: (e[1], e[0]))


def list_flat(
    root: str | os.PathLike, extensions: Sequence[str] = DEFAULT_EXTENSIONS, dataset: str = ""
) -> list[tuple[str, int]]:
    """``[(relative path, -1), ...]`` for every image file below ``root``, sorted."""
    root = Path(root)
    _require_dir(root, dataset)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            if _has_ext(f, extensions):
                out.append((Path(dirpath, f).relative_to(root).as_posix(), -1))
    if not out:
        raise DatasetError(
            f"dataset {dataset!r}: no image files ({', '.join(extensions)}) below {root}"
        )
    return sorted(out)


def build_manifest(
    dataset: str,
    entries: Sequence[tuple[str, int]],
    root: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    check_images: bool = True,
    progress: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    expected_images: int | None = None,
) -> pd.DataFrame:
    """The manifest table (see the module docstring) of ``entries`` (relative path, label).

    A missing file is an error naming it; an undecodable one, or one :mod:`ants.images`
    refuses (more than ``max_pixels`` pixels, ...), is recorded (``readable`` False,
    ``error``). Labels outside ``class_names`` are an error naming the first such file.
    ``expected_images``: the published image count; a different count is logged as a
    warning (:func:`check_count`), not an error.
    """
    root = Path(root)
    rows = []
    n_classes = len(class_names) if class_names is not None else None
    check_count(dataset, len(entries), expected_images)
    for rel, label in _progress(entries, desc=f"manifest {dataset}", unit="img", enabled=progress):
        path = root / rel
        if not path.is_file():
            raise DatasetError(f"dataset {dataset!r}: image file not found: {path}")
        if label >= 0 and n_classes is not None and label >= n_classes:
            raise DatasetError(
                f"dataset {dataset!r}: {path} has label {label}, but the label set has {n_classes} classes"
            )
        error = check_image(path, max_pixels=max_pixels) if check_images else ""
        rows.append(
            {
                "id": f"{dataset}/{rel}",
                "path": path.as_posix(),
                "label": int(label),
                "class_name": class_names[label]
                if (label >= 0 and class_names is not None)
                else "",
                "sha256": file_digest(path),
                "readable": not error,
                "error": error,
            }
        )
    frame = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    frame["label"] = frame["label"].astype("int64")
    frame["readable"] = frame["readable"].astype(bool)
    dup = frame["id"].duplicated()
    if dup.any():
        raise DatasetError(
            f"dataset {dataset!r}: image {frame['id'][dup].iloc[0]!r} is listed twice"
        )
    return frame


# --------------------------------------------------------------------------------------------
# downloads

#: Defaults of :func:`fetch_archive` (params: ``datasets.<name>.download.*``, see the docstring).
DEFAULT_TIMEOUT = 60.0
DEFAULT_MIN_RATE = 1024.0
DEFAULT_RETRIES = 4
DEFAULT_BACKOFF = 2.0
MAX_BACKOFF = 60.0
MAX_REDIRECTS = 5
_CHUNK = 1 << 20

Downloader = Callable[[str, Path], None]


class _Transient(Exception):
    """A failure worth retrying (5xx, reset, timeout, stall, short body)."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failure that retrying will not fix (404, refused, bad redirect, unknown host)."""


def parse_checksum(checksum: str) -> tuple[str, str]:
    """``"sha256:<hex>"`` -> ``("sha256", "<hex>")`` (also ``md5``)."""
    algorithm, _, digest = str(checksum).partition(":")
    if algorithm not in ("sha256", "md5") or not digest:
        raise ValueError(f"checksum must look like 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    return algorithm, digest.lower()


def archive_name(url: str, dataset: str = "") -> str:
    """The file name an archive is stored under: the last path segment of ``url``."""
    name = Path(urllib.parse.urlsplit(url).path).name
    return name or f"{dataset or 'dataset'}.archive"


def _who(dataset: str) -> str:
    return f"dataset {dataset!r}: " if dataset else ""


def _advice(dataset: str, name: str) -> str:
    key = f"datasets.{dataset}" if dataset else "the dataset's params entry"
    return (
        f"check the URL ({key}.url) and the network, or fetch {name} yourself and set "
        f"{key}.mirror to the folder holding it (or {key}.extracted to an already extracted copy)"
    )


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """(connection, request target) for ``url``, through the environment's proxy if any."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    proxy = None
    if not _is_loopback(host) and not urllib.request.proxy_bypass(host):
        proxy = urllib.request.getproxies().get(parts.scheme)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        if proxy:
            pp = urllib.parse.urlsplit(proxy)
            conn = http.client.HTTPSConnection(
                pp.hostname, pp.port or 8080, timeout=timeout, context=context
            )
            conn.set_tunnel(host, port or 443)
        else:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        return conn, target
    if proxy:
        pp = urllib.parse.urlsplit(proxy)
        return http.client.HTTPConnection(pp.hostname, pp.port or 8080, timeout=timeout), url
    return http.client.HTTPConnection(host, port, timeout=timeout), target


def _content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    """``'bytes 10-99/100'`` -> ``(10, 99, 100)``; ``'bytes */100'`` -> ``(None, None, 100)``."""
    if not value or not value.startswith("bytes "):
        return None, None, None
    span, _, total = value[6:].partition("/")
    size = int(total) if total.strip().isdigit() else None
    if span.strip() == "*":
        return None, None, size
    first, _, last = span.partition("-")
    try:
        return int(first), int(last), size
    except ValueError:
        return None, None, size


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), MAX_BACKOFF) if value is not None else None
    except ValueError:
        return None


def _http_attempt(
    url: str,
    part: Path,
    *,
    timeout: float,
    min_rate: float,
    show_progress: bool,
    desc: str,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """One GET of ``url`` (following redirects) that appends to ``part`` from its current size.

    Raises :class:`_Transient` or :class:`_Fatal`; on return ``part`` holds the whole file.
    """
    for _ in range(MAX_REDIRECTS + 1):
        scheme = urllib.parse.urlsplit(url).scheme
        offset = part.stat().st_size if part.exists() else 0
        conn, target = _connection(url, timeout)
        killed = threading.Event()

        def kill(conn=conn, killed=killed):
            killed.set()
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        watchdog = threading.Timer(timeout, kill)
        watchdog.daemon = True
        watchdog.start()
        try:
            try:
                conn.putrequest("GET", target, skip_accept_encoding=True)
                conn.putheader("User-Agent", f"ants/{ants.__version__}")
                conn.putheader("Accept-Encoding", "identity")
                if offset:
                    conn.putheader("Range", f"bytes={offset}-")
                conn.endheaders()
                response = conn.getresponse()
            except ConnectionRefusedError as exc:
                raise _Fatal(
                    f"connection refused ({exc.strerror or exc}); is the host up and the port right?"
                ) from None
            except socket.gaierror as exc:
                raise _Fatal(f"cannot resolve the host ({exc.strerror or exc})") from None
            except ssl.SSLCertVerificationError as exc:
                raise _Fatal(
                    f"TLS certificate verification failed ({exc.verify_message or exc})"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                if killed.is_set() or isinstance(exc, TimeoutError):
                    raise _Transient(f"no complete response within {timeout:g} s") from None
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            finally:
                watchdog.cancel()
            if killed.is_set():  # the watchdog cut the headers short: the response is unusable
                raise _Transient(f"no complete response within {timeout:g} s")
            status = response.status
            if status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise _Fatal(f"HTTP {status} redirect without a Location header")
                new = urllib.parse.urljoin(url, location)
                new_scheme = urllib.parse.urlsplit(new).scheme
                if new_scheme not in ("http", "https") or (
                    scheme == "https" and new_scheme == "http"
                ):
                    raise _Fatal(
                        f"redirected to {new}; refusing a redirect from {scheme} to {new_scheme}"
                    )
                url = new
                continue
            if status == 416:
                _, _, size = _content_range(response.getheader("Content-Range"))
                if size is not None and offset == size:
                    return  # the part file is already complete
                part.unlink(missing_ok=True)
                raise _Transient("the server refused to resume the partial download; starting over")
            if status in (408, 425, 429) or status >= 500:
                raise _Transient(
                    f"HTTP {status} {response.reason}",
                    _retry_after(response.getheader("Retry-After")),
                )
            if status not in (200, 206):
                raise _Fatal(f"HTTP {status} {response.reason}")
            length = response.getheader("Content-Length")
            length = int(length) if length and length.isdigit() else None
            if status == 206:
                first, _, size = _content_range(response.getheader("Content-Range"))
                if first != offset:
                    part.unlink(missing_ok=True)
                    raise _Transient(
                        f"the server resumed at byte {first}, not {offset}; starting over"
                    )
                total = (
                    size if size is not None else (offset + length if length is not None else None)
                )
            else:
                if offset:
                    log.info(
                        "%s: the server ignores Range requests; downloading from the start", desc
                    )
                offset = 0
                total = length
            _read_body(
                response,
                conn,
                part,
                offset,
                total,
                length,
                timeout=timeout,
                min_rate=min_rate,
                show_progress=show_progress,
                desc=desc,
                clock=clock,
            )
            return
        finally:
            conn.close()
    raise _Fatal(f"more than {MAX_REDIRECTS} redirects")


def _read_body(
    response,
    conn,
    part: Path,
    offset: int,
    total: int | None,
    length: int | None,
    *,
    timeout: float,
    min_rate: float,
    show_progress: bool,
    desc: str,
    clock,
) -> None:
    received = 0
    if conn.sock is not None:
        conn.sock.settimeout(timeout)
    window_start, window_bytes = clock(), 0
    with (
        open(part, "ab" if offset else "wb") as out,
        _progress(total=total, initial=offset, desc=desc, unit="B", enabled=show_progress) as bar,
    ):
        while True:
            try:
                block = response.read1(_CHUNK)
            except TimeoutError:
                raise _Transient(
                    f"no data for {timeout:g} s after {offset + received:,} bytes"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            if not block:
                break
            out.write(block)
            received += len(block)
            window_bytes += len(block)
            bar.update(len(block))
            now = clock()
            if now - window_start >= timeout:
                if window_bytes < min_rate * (now - window_start):
                    raise _Transient(
                        f"too slow: {window_bytes:,} bytes in {now - window_start:.0f} s "
                        f"(below {min_rate:g} bytes/s for {timeout:g} s)"
                    )
                window_start, window_bytes = now, 0
        out.flush()
        os.fsync(out.fileno())
    if length is not None and received < length:
        raise _Transient(
            f"the connection closed after {offset + received:,} of {offset + length:,} bytes"
        )


def _copy_file_url(url: str, part: Path, *, show_progress: bool, desc: str) -> None:
    src = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    if not src.is_file():
        raise _Fatal(f"file not found: {src}")
    with (
        open(src, "rb") as fin,
        open(part, "wb") as out,
        _progress(total=src.stat().st_size, desc=desc, unit="B", enabled=show_progress) as bar,
    ):
        while block := fin.read(_CHUNK):
            out.write(block)
            bar.update(len(block))


def _download(
    url: str,
    part: Path,
    *,
    dataset: str,
    timeout: float,
    min_rate: float,
    retries: int,
    backoff: float,
    show_progress: bool,
    sleep: Callable[[float], None],
) -> None:
    """Fill ``part`` with ``url``'s bytes, resuming and retrying; one DatasetError if it fails."""
    scheme = urllib.parse.urlsplit(url).scheme
    name = archive_name(url, dataset)
    desc = f"download {name}"
    if scheme not in ("http", "https", "file"):
        raise DatasetError(
            f"{_who(dataset)}cannot download {url}: unsupported URL scheme {scheme!r} "
            f"(valid: http, https, file); {_advice(dataset, name)}"
        )
    last: _Transient | None = None
    for attempt in range(retries + 1):
        try:
            if scheme == "file":
                _copy_file_url(url, part, show_progress=show_progress, desc=desc)
            else:
                _http_attempt(
                    url,
                    part,
                    timeout=timeout,
                    min_rate=min_rate,
                    show_progress=show_progress,
                    desc=desc,
                )
            return
        except _Fatal as exc:
            raise DatasetError(
                f"{_who(dataset)}cannot download {url}: {exc}; {_advice(dataset, name)}"
            ) from None
        except _Transient as exc:
            last = exc
            if attempt == retries:
                break
            wait = (
                exc.retry_after
                if exc.retry_after is not None
                else min(backoff * 2**attempt, MAX_BACKOFF)
            )
            have = part.stat().st_size if part.exists() else 0
            log.warning(
                "%sdownload of %s interrupted (%s); %s in %.0f s (attempt %d of %d)",
                _who(dataset),
                url,
                exc,
                f"resuming from byte {have:,}" if have else "retrying",
                wait,
                attempt + 2,
                retries + 1,
            )
            sleep(wait)
    raise DatasetError(
        f"{_who(dataset)}cannot download {url}: {last} (gave up after {retries + 1} attempts; "
        f"the partial file {part} is kept and the next run resumes it); {_advice(dataset, name)}"
    )


def _checksum_error(source: str, algorithm: str, expected: str, actual: str) -> ChecksumError:
    return ChecksumError(
        f"{source}: {algorithm} checksum mismatch: expected {expected}, got {actual} "
        f"(a truncated download, or the file changed upstream; check the URL or the checksum "
        f"in params.yaml)"
    )


def fetch_archive(
    url: str,
    dest: str | os.PathLike,
    checksum: str,
    *,
    dataset: str = "",
    mirror: str | os.PathLike | None = None,
    downloader: Downloader | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    min_rate: float = DEFAULT_MIN_RATE,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """The archive at ``dest`` with the right ``checksum``, downloading ``url`` if needed.

    * A file already at ``dest`` with the right checksum is used as is.
    * ``mirror``: a local folder holding the archive under its file name
      (:func:`archive_name` of ``url``); that file is checksum-checked and returned (not
      copied); nothing is downloaded. A missing file there is an error (no silent download).
    * Otherwise ``url`` (http, https or file) is downloaded into ``dest`` + ``".part"``:
      an interrupted download **resumes** from the part file with an HTTP ``Range`` request
      (checked against the ``206`` answer's ``Content-Range``; a server that ignores ``Range``
      and answers ``200`` gets a full download); the part file is renamed to ``dest`` only
      once the checksum matches, so the next run finds either a complete archive or a part
      file to resume, never a stray temporary file.
    * ``timeout`` (seconds) bounds **in wall-clock time** connecting plus receiving the
      response headers (a watchdog closes the socket, so a server that trickles its headers
      is cut off too), and any body read; and the body must arrive at ``min_rate`` bytes/s on
      average over every ``timeout``-second window, so a server trickling a byte every 2 s is
      cut off after ``timeout`` seconds instead of hanging for days.
    * Transient failures (HTTP 408/425/429/5xx, connection reset or closed early, timeouts,
      stalls) are retried ``retries`` times, waiting ``backoff * 2**k`` seconds (at most 60 s;
      a ``Retry-After`` header wins), each retry resuming the part file. Permanent ones
      (HTTP 404 and other 4xx, connection refused, unknown host, TLS verification failure,
      redirects to another scheme than http/https or from https down to http) fail at once.
    * Every failure is ONE :class:`DatasetError` line naming the dataset, the URL, the reason
      and what to do (set ``mirror`` or ``extracted``); a checksum mismatch is a
      :class:`ChecksumError` (after a resumed download, one fresh full download is tried
      first) and deletes the part file.
    * ``progress``: a bar on a terminal, log lines in a log file (:mod:`ants.progress`).
    * ``downloader(url, tmp_path)``: a replacement transfer function (tests, custom
      transports); then the file goes to a temporary file and nothing is resumed or retried.
    """
    algorithm, expected = parse_checksum(checksum)
    dest = Path(dest)
    if mirror is not None:
        candidate = Path(mirror).expanduser() / dest.name
        if not candidate.is_file():
            key = f"datasets.{dataset}.mirror" if dataset else "mirror"
            raise DatasetError(
                f"{_who(dataset)}the mirror folder {Path(mirror)} has no {dest.name} ({key}); "
                f"put the archive there under that name, or unset {key} to download {url}"
            )
        actual = file_digest(candidate, algorithm)
        if actual != expected:
            raise _checksum_error(str(candidate), algorithm, expected, actual)
        return candidate
    if dest.is_file() and file_digest(dest, algorithm) == expected:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(f".{dest.name}.*.tmp"):  # left by an older, killed version
        stale.unlink(missing_ok=True)
    if downloader is not None:
        with atomic_path(dest) as tmp:
            downloader(url, tmp)
            actual = file_digest(tmp, algorithm)
            if actual != expected:
                raise _checksum_error(url, algorithm, expected, actual)
        return dest
    part = dest.with_name(dest.name + ".part")
    for fresh in (False, True):
        resumed = part.exists() and part.stat().st_size > 0
        _download(
            url,
            part,
            dataset=dataset,
            timeout=timeout,
            min_rate=min_rate,
            retries=retries,
            backoff=backoff,
            show_progress=progress,
            sleep=sleep,
        )
        actual = file_digest(part, algorithm)
        if actual == expected:
            os.chmod(part, 0o666 & ~_umask())
            os.replace(part, dest)
            return dest
        part.unlink(missing_ok=True)
        if not resumed or fresh:
            break
        log.warning(
            "%s%s: checksum mismatch after resuming a partial download; downloading it again from "
            "the start",
            _who(dataset),
            url,
        )
    raise _checksum_error(url, algorithm, expected, actual)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------------
# extraction

#: Extraction limits of :func:`extract_archive` (params: ``datasets.<name>.extract.*``).
DEFAULT_MAX_EXTRACT_BYTES = 64 * 1024**3
DEFAULT_MAX_RATIO = 200.0
EXPECTED_SIZE_FACTOR = 4
#: Members (and archives) smaller than this are exempt from the compression-ratio check:
#: tiny files of zeros compress absurdly well without being a bomb.
RATIO_MIN_BYTES = 1 << 20


def _escapes(base: Path, relative: str) -> bool:
    if relative.startswith(("/", "\\")) or (len(relative) > 1 and relative[1] == ":"):
        return True
    resolved = os.path.normpath(os.path.join(base, relative))
    return resolved != str(base) and not resolved.startswith(str(base) + os.sep)


def _safe_members(names: Iterable[str], target: Path, archive: Path) -> None:
    base = Path(os.path.abspath(target))
    for name in names:
        if _escapes(base, name):
            raise DatasetError(
                f"{archive}: member {name!r} would be extracted outside {target}; refusing"
            )


def _check_tar_links(members: Sequence[tarfile.TarInfo], target: Path, archive: Path) -> None:
    """Symlink targets resolve from the link's folder, hardlink targets from the archive root."""
    base = Path(os.path.abspath(target))
    for m in members:
        if m.issym():
            where = os.path.join(os.path.dirname(m.name), m.linkname)
            if os.path.isabs(m.linkname) or _escapes(base, where):
                raise DatasetError(
                    f"{archive}: symlink {m.name!r} -> {m.linkname!r} points outside the "
                    f"extracted folder; refusing"
                )
        elif m.islnk():
            if os.path.isabs(m.linkname) or _escapes(base, m.linkname):
                raise DatasetError(
                    f"{archive}: hardlink {m.name!r} -> {m.linkname!r} points outside the "
                    f"extracted folder (hardlink targets are relative to the archive root); "
                    f"refusing"
                )
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = "character device" if m.ischr() else "block device" if m.isblk() else "FIFO"
            raise DatasetError(
                f"{archive}: member {m.name!r} is a {kind}; a dataset archive holds only "
                f"files, folders and links; refusing"
            )


def _extract_setting(dataset: str, key: str) -> str:
    """Where an extraction limit is set: ``datasets.<dataset>.extract.<key>`` in params.yaml,
    or the keyword ``<key>`` of :func:`extract_archive` when no dataset is named."""
    return f"datasets.{dataset}.extract.{key}" if dataset else key


def _check_sizes(
    archive: Path,
    total: int,
    limit: int,
    max_ratio: float,
    members: Iterable[tuple[str, int, int | None]],
    dataset: str = "",
) -> None:
    """``members``: (name, uncompressed size, compressed size or None)."""
    if total > limit:
        raise DatasetError(
            f"{archive}: extracting it would write {total:,} bytes, above the limit of "
            f"{limit:,} bytes ({_extract_setting(dataset, 'max_bytes')}); refusing (raise the "
            f"limit if the archive is genuine)"
        )
    ratio_setting = _extract_setting(dataset, "max_ratio")
    size = archive.stat().st_size
    if total >= RATIO_MIN_BYTES and size > 0 and total / size > max_ratio:
        raise DatasetError(
            f"{archive}: {total:,} bytes from a {size:,}-byte archive is a compression ratio of "
            f"{total / size:.0f}:1, above the limit of {max_ratio:g}:1 ({ratio_setting}); "
            f"refusing a likely decompression bomb"
        )
    for name, usize, csize in members:
        if csize is not None and usize >= RATIO_MIN_BYTES and usize / max(csize, 1) > max_ratio:
            raise DatasetError(
                f"{archive}: member {name!r} expands {csize:,} -> {usize:,} bytes "
                f"({usize / max(csize, 1):.0f}:1, above the limit of {max_ratio:g}:1, "
                f"{ratio_setting}); refusing a likely decompression bomb"
            )


def extract_archive(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    dataset: str = "",
    max_bytes: int | None = None,
    expected_bytes: int | None = None,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> Path:
    """Extract a ``.tar(.gz|.bz2|.xz)`` or ``.zip`` archive into ``target`` (created).

    Extraction goes to a temporary folder beside ``target`` that is renamed into place, so an
    interrupted extraction leaves nothing that looks complete; the folder gets the usual
    permissions (``0o777 & ~umask``). Refused, before anything is written, with a
    :class:`DatasetError` naming the archive:

    * members with absolute paths or ``..`` escaping ``target``; symlinks whose target
      (relative to the link's folder) or hardlinks whose target (relative to the archive
      root, as tar stores them) lies outside; device files and FIFOs;
    * a total uncompressed size above ``max_bytes`` (default: ``4 * expected_bytes`` when the
      expected extracted size is known, else :data:`DEFAULT_MAX_EXTRACT_BYTES`, 64 GiB);
    * a compression ratio above ``max_ratio`` (default 200:1) overall (uncompressed total /
      archive size) or, for zip files, per member (tar streams are compressed as a whole, so
      only the overall ratio exists); sizes under 1 MiB are exempt. These two messages name
      the setting to raise: ``datasets.<dataset>.extract.max_bytes`` / ``.max_ratio`` when
      ``dataset`` is given, else the keyword.

    Tar files are extracted with tarfile's ``data`` filter as a second line of defence; its
    errors and those of a damaged archive are reported with the archive's name.
    """
    archive, target = Path(archive), Path(target)
    who = _who(dataset)
    if not archive.is_file():
        raise DatasetError(f"{who}archive not found: {archive}")
    if max_bytes is None:
        max_bytes = (
            EXPECTED_SIZE_FACTOR * expected_bytes if expected_bytes else DEFAULT_MAX_EXTRACT_BYTES
        )
    damaged = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, OSError)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                with atomic_dir(target) as tmp:
                    _safe_members([i.filename for i in infos], tmp, archive)
                    _check_sizes(
                        archive,
                        sum(i.file_size for i in infos),
                        max_bytes,
                        max_ratio,
                        [(i.filename, i.file_size, i.compress_size) for i in infos],
                        dataset,
                    )
                    zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                members = tf.getmembers()
                with atomic_dir(target) as tmp:
                    _safe_members([m.name for m in members], tmp, archive)
                    _check_tar_links(members, tmp, archive)
                    _check_sizes(
                        archive,
                        sum(m.size for m in members if m.isreg()),
                        max_bytes,
                        max_ratio,
                        [],
                        dataset,
                    )
                    tf.extractall(tmp, members=members, filter="data")
        else:
            raise DatasetError(f"{who}{archive}: not a tar or zip archive")
    except DatasetError as exc:
        if who and not str(exc).startswith(who):
            raise DatasetError(f"{who}{exc}") from None
        raise
    except tarfile.FilterError as exc:
        raise DatasetError(f"{who}{archive}: refused by tarfile's data filter: {exc}") from None
    except damaged as exc:
        raise DatasetError(
            f"{who}{archive}: the archive is damaged or truncated ({type(exc).__name__}: {exc}); "
            f"delete it and run again"
        ) from None
    return target


# --------------------------------------------------------------------------------------------
# a dataset's files on disk, from its params entry


def obtain_dataset(
    dataset: str,
    cfg: Mapping,
    out_dir: str | os.PathLike,
    *,
    downloader: Downloader | None = None,
    progress: bool = True,
) -> Path:
    """The extracted folder of a ``source: download`` dataset, as ``out_dir / "extracted"``.

    ``cfg`` is the dataset's params entry: ``url``, ``checksum``, ``root`` and optionally
    ``extracted`` (an already extracted copy, used as is: ``out_dir/extracted`` becomes a
    symlink to it, nothing is copied; it must hold ``root``), ``mirror`` (see
    :func:`fetch_archive`), ``download`` (``timeout``, ``min_rate``, ``retries``, ``backoff``)
    and ``extract`` (``max_bytes``, ``expected_bytes``, ``max_ratio``).
    """
    out_dir = Path(out_dir)
    link = out_dir / "extracted"
    extracted = cfg.get("extracted")
    if extracted:
        folder = Path(extracted).expanduser().resolve()
        if not folder.is_dir():
            raise DatasetError(
                f"dataset {dataset!r}: datasets.{dataset}.extracted: folder not found: {folder}"
            )
        root = cfg.get("root")
        if root and not (folder / root).is_dir():
            raise DatasetError(
                f"dataset {dataset!r}: datasets.{dataset}.extracted: {folder} has no {root} "
                f"(datasets.{dataset}.root); point extracted at the folder the archive "
                f"extracts into"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out_dir / ".extracted.link.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(folder, tmp, target_is_directory=True)
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        os.replace(tmp, link)
        return link
    dl = dict(cfg.get("download") or {})
    ex = dict(cfg.get("extract") or {})
    url = cfg["url"]
    archive = fetch_archive(
        url,
        out_dir / archive_name(url, dataset),
        cfg["checksum"],
        dataset=dataset,
        mirror=cfg.get("mirror"),
        downloader=downloader,
        progress=progress,
        **{k: dl[k] for k in ("timeout", "min_rate", "retries", "backoff") if k in dl},
    )
    if link.is_symlink():
        link.unlink()
    return extract_archive(
        archive,
        link,
        dataset=dataset,
        **{k: ex[k] for k in ("max_bytes", "expected_bytes", "max_ratio") if k in ex},
    )


# --------------------------------------------------------------------------------------------
# the benchmark datasets

_MOS_URL = "http://pages.cs.wisc.edu/~huangrui/imagenet_ood_dataset/{}.tar.gz"
_OPENOOD = (
    "OpenOOD v1.5 ImageNet-1k benchmark: download the image lists and image zips with OpenOOD's "
    "script (github.com/Jingkang50/OpenOOD, scripts/download/download.py, e.g. `python "
    "scripts/download/download.py --contents datasets --datasets ood_v1.5 --save_dir ./data`; the "
    "Google Drive ids are in openood/evaluation_api/datasets.py) and unzip them. Then set root to "
    "<data>/{images} and list to <data>/benchmark_imglist/imagenet/{imglist}: its paths are relative "
    "to {images}/."
)

#: Every benchmark dataset of docs/METHOD.md section 9 plus the fine-grained ID sets the paper
#: reports. Per entry: ``benchmark`` (where it is used), ``role`` (``id`` / ``near`` / ``far``),
#: ``source`` (``"download"`` with ``url``, or ``"user path"``), ``expected_images`` (the
#: published image count of the split used), ``checksum`` (of the archive, where known),
#: ``layout`` / ``root`` / ``list`` (what the params entry needs; ``root`` of a download is the
#: folder inside the archive), ``label_set`` (ID sets) and ``instructions`` for user-path sets.
KNOWN_DATASETS: dict[str, dict] = {
    # --- MOS four (far-OOD, ID ImageNet-1k val) ----------------------------------------------
    "imagenet_val": {
        "benchmark": "mos4",
        "role": "id",
        "source": "user path",
        "expected_images": 50_000,
        "layout": "class_folders",
        "root": None,
        "extensions": [".jpeg", ".jpg", ".png"],
        "label_set": "imagenet1k",
        "instructions": (
            "ImageNet-1k (ILSVRC2012) validation set, registration-gated: register at "
            "https://image-net.org, download ILSVRC2012_img_val.tar and arrange the 50,000 images in "
            "one folder per wnid (n01440764/, ..., e.g. with the devkit's labels or the usual "
            "valprep.sh); set root to that folder. Sorted wnid folders give the standard class "
            "indices, matching the imagenet1k label set."
        ),
    },
    "inaturalist": {
        "benchmark": "mos4",
        "role": "far",
        "source": "download",
        "url": _MOS_URL.format("iNaturalist"),
        "checksum": "md5:5be6ea8aa027d7b631916427b32cb335",
        "expected_images": 10_000,
        "layout": "flat",
        "root": "iNaturalist/images",
        "extensions": [".jpg", ".jpeg"],
    },
    "sun": {
        "benchmark": "mos4",
        "role": "far",
        "source": "download",
        "url": _MOS_URL.format("SUN"),
        "checksum": "md5:8469c3ada62211477954ec1be53b12d0",
        "expected_images": 10_000,
        "layout": "flat",
        "root": "SUN/images",
        "extensions": [".jpg", ".jpeg"],
    },
    "places": {
        "benchmark": "mos4",
        "role": "far",
        "source": "download",
        "url": _MOS_URL.format("Places"),
        "checksum": "md5:b5cb5eba2754ae2a28beea8718db699a",
        "expected_images": 10_000,
        "layout": "flat",
        "root": "Places/images",
        "extensions": [".jpg", ".jpeg"],
    },
    "textures": {
        "benchmark": "mos4",
        "role": "far",
        "source": "download",
        "url": "https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz",
        "checksum": "sha256:e42855a52a4950a3b59612834602aa253914755c95b0cff9ead6d07395f8e205",
        "expected_images": 5_640,
        "layout": "flat",
        "root": "dtd/images",
        "extensions": [".jpg", ".jpeg"],
    },
    # --- OpenOOD v1.5 ImageNet-1k ------------------------------------------------------------
    "openood_imagenet_test": {
        "benchmark": "openood_v15",
        "role": "id",
        "source": "user path",
        "expected_images": 45_000,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_imagenet.txt",
        "label_set": "imagenet1k",
        "instructions": _OPENOOD.format(images="images_largescale", imglist="test_imagenet.txt")
        + " The ImageNet-1k images themselves are registration-gated (https://image-net.org).",
    },
    "ssb_hard": {
        "benchmark": "openood_v15",
        "role": "near",
        "source": "user path",
        "expected_images": 49_000,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_ssb_hard.txt",
        "instructions": _OPENOOD.format(images="images_largescale", imglist="test_ssb_hard.txt"),
    },
    "ninco": {
        "benchmark": "openood_v15",
        "role": "near",
        "source": "user path",
        "expected_images": 5_879,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_ninco.txt",
        "instructions": _OPENOOD.format(images="images_largescale", imglist="test_ninco.txt"),
    },
    "openood_inaturalist": {
        "benchmark": "openood_v15",
        "role": "far",
        "source": "user path",
        "expected_images": 10_000,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_inaturalist.txt",
        "instructions": _OPENOOD.format(images="images_largescale", imglist="test_inaturalist.txt"),
    },
    "openood_textures": {
        "benchmark": "openood_v15",
        "role": "far",
        "source": "user path",
        "expected_images": 5_160,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_textures.txt",
        "instructions": _OPENOOD.format(images="images_classic", imglist="test_textures.txt"),
    },
    "openimage_o": {
        "benchmark": "openood_v15",
        "role": "far",
        "source": "user path",
        "expected_images": 15_869,
        "layout": "list",
        "root": None,
        "list": "benchmark_imglist/imagenet/test_openimage_o.txt",
        "instructions": _OPENOOD.format(images="images_largescale", imglist="test_openimage_o.txt"),
    },
    # --- fine-grained ID sets (OOD: the MOS far-OOD sets) ------------------------------------
    "cub200": {
        "benchmark": "fine_grained",
        "role": "id",
        "source": "user path",
        "expected_images": 5_794,
        "layout": "class_folders",
        "root": None,
        "extensions": [".jpg"],
        "label_set": "cub200",
        "instructions": (
            "CUB-200-2011 (https://www.vision.caltech.edu/datasets/cub_200_2011/, CUB_200_2011.tgz): "
            "the test split (train_test_split.txt == 0) is 5,794 of the 11,788 images. Arrange the test "
            "images as CUB_200_2011/images/NNN.Name/ class folders (or give an image list with 0-based "
            "labels, class id - 1) and set root to that folder."
        ),
    },
    "stanford_cars": {
        "benchmark": "fine_grained",
        "role": "id",
        "source": "user path",
        "expected_images": 8_041,
        "layout": "list",
        "root": None,
        "list": None,
        "label_set": "stanford_cars",
        "instructions": (
            "Stanford Cars test split (8,041 images; the original site is offline, copies exist e.g. as "
            "torchvision's StanfordCars layout). Write an image list 'cars_test/xxxxx.jpg <class id - 1>' "
            "from the devkit's cars_test_annos_withlabels and set root and list."
        ),
    },
    "food101": {
        "benchmark": "fine_grained",
        "role": "id",
        "source": "user path",
        "expected_images": 25_250,
        "layout": "class_folders",
        "root": None,
        "label_set": "food101",
        "instructions": (
            "Food-101 (http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz, about 5 GB): copy the test "
            "images (meta/test.txt; 25,250 images) of food-101/images into a folder that keeps the "
            "101 class folders (apple_pie ...) and set root to it (configs/finegrained.yaml)."
        ),
    },
    "oxford_pets": {
        "benchmark": "fine_grained",
        "role": "id",
        "source": "user path",
        "expected_images": 3_669,
        "layout": "class_folders",
        "root": None,
        "label_set": "oxford_pets",
        "instructions": (
            "Oxford-IIIT Pets (https://www.robots.ox.ac.uk/~vgg/data/pets/, images.tar.gz and "
            "annotations.tar.gz): sort the test images (annotations/test.txt; 3,669 images) into one "
            "folder per breed named like the file-name prefix (Abyssinian, american_bulldog, ...: 37 "
            "folders) and set root to the folder holding them (configs/finegrained.yaml)."
        ),
    },
}
