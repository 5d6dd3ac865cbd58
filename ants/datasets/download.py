"""Resumable, checksummed downloads of dataset archives, and a dataset's files from its
params entry (:func:`obtain_dataset`).

:func:`fetch_archive` resumes interrupted transfers, retries transient failures, bounds
every request in wall-clock time and checks the configured checksum (``sha256:<hex>`` or
``md5:<hex>``) before the archive is moved into place; a local ``mirror`` folder or an
already ``extracted`` copy can stand in for the download (:func:`obtain_dataset`). The
archive is then extracted safely (:func:`ants.datasets.extract.extract_archive`).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

import ants
from ants._io import atomic_path, file_digest
from ants.datasets import DatasetError
from ants.datasets import dataset_prefix as _who
from ants.datasets.extract import extract_archive
from ants.progress import progress as _progress

log = logging.getLogger(__name__)

__all__ = [
    "ChecksumError",
    "Downloader",
    "archive_name",
    "fetch_archive",
    "obtain_dataset",
    "parse_checksum",
]


class ChecksumError(DatasetError):
    """A downloaded file does not have the configured checksum."""


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
