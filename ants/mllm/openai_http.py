"""The OpenAI-compatible HTTP backend (vLLM, SGLang, Ollama, or any ``/v1/chat/completions``).

Config (the ``mllm`` section, ``backend: openai``)::

    base_url: http://localhost:8000/v1   # required; the part before /chat/completions
    model: llava-hf/llava-1.5-7b-hf      # required; the served model name
    api_key_env: OPENAI_API_KEY          # optional: NAME of the environment variable with the key
    revision: ""                         # optional: pins the served weights in the cache key
    timeout_s: 120                       # TOTAL per request: connect + send + the whole answer
    max_retries: 8                       # retries after the first try
    backoff_s: 1.0                       # base of the exponential back-off (seconds)
    max_backoff_s: 60                    # cap of one back-off delay
    max_wait_s: 300                      # cap of the time slept between the tries of one request
    concurrency: 8                       # requests in flight at once (a thread pool)
    extra_body: {}                       # merged into each request (e.g. {seed: 0})

Requests are greedy (``temperature: 0``) with ``max_tokens`` from the generation settings; an
image is sent as a base64 ``data:`` URL, after the resize asked by the settings (PNG then).
Images are decoded by :func:`ants.images.open_rgb`, as for the manifest and the CLIP encoder:
a 16-bit or float file is sent as its scaled 8-bit RGB PNG, and an unreadable or too large file
(more than :data:`ants.images.DEFAULT_MAX_PIXELS` pixels) fails its query only, naming the file.

**Secrets.** The API key is read from the environment variable named by ``api_key_env`` when
the backend is built, sent only in the ``Authorization`` header, and never appears in
``identity()``, ``repr()``, error messages, cache keys or records. Neither does ``base_url``
(the same model behind another address gives the same answers).

**Timeouts.** ``timeout_s`` bounds the WHOLE exchange (connecting, sending the request, reading
the status, headers and body), not each socket read: a watchdog shuts the socket down at the
deadline, so a server that trickles one byte every few seconds is cut off after ``timeout_s``
(reason ``"timed out after N s"``).

**Retries.** 5xx, 408 and 429 responses, timeouts, reset or refused connections and malformed
JSON are retried, at most ``max_retries`` times. Before retry ``k`` (``k = 0, 1, ...``) the
backend sleeps ``d_k = min(backoff_s * 2**k, max_backoff_s)`` with "equal jitter": a uniform
draw in ``[d_k / 2, d_k]`` (:func:`backoff_delay`), so parallel jobs that hit a limit together
do not retry in lockstep. The jitter comes from ``random.Random(jitter_seed)``: seeded from the
OS by default (``jitter_seed=None``), reproducible when a seed is given. A 429 or 503 response
with a ``Retry-After`` header (seconds, or an HTTP-date) is never retried sooner than it asks:
the delay is ``max(Retry-After, back-off)``. The delays of one request may add up to at most
``max_wait_s``; a ``Retry-After`` beyond what is left of it gives up at once (with that reason).
With the defaults the back-off sleeps at least 91.5 s and at most 183 s in all
(:func:`backoff_bounds`), so a rate limit of a minute is waited out. When the retries are
spent, that query's answer is recorded as failed (with the reason) and the run goes on. Other
4xx responses fail the query at once.

**Answers.** The answer is ``choices[0].message.content`` (:func:`answer_text`), stripped and
taken whole whatever its length (the cache and the negatives log keep it whole; listings cut it
to ``mllm.max_answer_chars``). A response without it, or whose content is null or not a string,
is a server glitch, not an answer: that query fails at once (no retry: a greedy server would
send the same), so it is never cached, counts against ``max_failed_fraction``, and a re-run
asks it again. An empty string is an answer (``"empty"``).

**Check.** :meth:`OpenAIBackend.check` runs before any answering: a wrong key (401/403), an
unknown model (missing from ``/models``, or 404) or an unreachable server raise one
:class:`~ants.mllm.base.BackendError`.

Proxies come from the usual environment variables (``http_proxy``, ``https_proxy``,
``no_proxy``), as with :mod:`urllib`.
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import http.client
import io
import json
import logging
import math
import os
import random
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from ants.images import failure_reason, is_scaled_mode, open_rgb
from ants.mllm.base import BackendError, Query

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 8
DEFAULT_BACKOFF_S = 1.0
DEFAULT_MAX_BACKOFF_S = 60.0
DEFAULT_MAX_WAIT_S = 300.0
DEFAULT_CONCURRENCY = 8
#: statuses whose ``Retry-After`` header is honoured
RETRY_AFTER_STATUSES = (429, 503)
_CHUNK = 65536


class RequestFailed(RuntimeError):
    """One request failed for good (after its retries); the message is the recorded reason."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _HTTPStatus(Exception):
    def __init__(self, code: int, body: str) -> None:
        super().__init__(f"HTTP {code}: {body}")
        self.code = code
        self.body = body


# -- back-off -----------------------------------------------------------------------------------


def backoff_delay(
    retry: int, backoff_s: float, max_backoff_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to sleep before retry number ``retry`` (0 = the first retry).

    ``d = min(backoff_s * 2**retry, max_backoff_s)``, then "equal jitter": uniform in
    ``[d / 2, d]`` drawn from ``rng`` (``rng=None``: no jitter, ``d`` itself).
    """
    if retry < 0 or backoff_s < 0 or max_backoff_s < 0:
        raise ValueError(
            f"backoff_delay: expected retry >= 0, backoff_s >= 0 and max_backoff_s >= 0; got "
            f"retry={retry}, backoff_s={backoff_s}, max_backoff_s={max_backoff_s}"
        )
    # 2**retry overflows a float past ~1023 retries; the cap has long been reached by then
    d = max_backoff_s if retry > 1000 else min(backoff_s * 2.0**retry, max_backoff_s)
    if rng is None:
        return d
    return rng.uniform(d / 2, d)


def backoff_schedule(
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    rng: random.Random | None = None,
) -> list[float]:
    """The ``max_retries`` delays :func:`backoff_delay` gives, in order (no ``Retry-After``)."""
    return [backoff_delay(k, backoff_s, max_backoff_s, rng) for k in range(max_retries)]


def backoff_bounds(
    max_retries: int = DEFAULT_MAX_RETRIES,
    backoff_s: float = DEFAULT_BACKOFF_S,
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
    max_wait_s: float = DEFAULT_MAX_WAIT_S,
) -> tuple[float, float]:
    """(least, most) seconds one request can sleep in back-off before it gives up, whatever
    the jitter draws: the sum of the ``d_k / 2`` and of the ``d_k``, each capped at
    ``max_wait_s``. With the defaults: (91.5, 183.0)."""
    full = sum(backoff_schedule(max_retries, backoff_s, max_backoff_s))
    return min(full / 2, max_wait_s), min(full, max_wait_s)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header -> seconds to wait (>= 0), or None when absent or unreadable.

    The header is either a number of seconds (``"120"``) or an HTTP-date
    (``"Wed, 21 Oct 2015 07:28:00 GMT"``), measured from ``now`` (a :func:`time.time` value;
    default: the current time). A date in the past means 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


# -- images -------------------------------------------------------------------------------------


def _encode_image(
    path: str | None, size: Sequence[int] | None, blank: Sequence[int] | None = None
) -> str:
    """A ``data:`` URL of an image file (or of a black ``blank`` image when ``path`` is None).

    The file is decoded by :func:`ants.images.open_rgb` (an unreadable, huge or out-of-range
    file raises :class:`ants.images.ImageError` naming it). It is sent as is when it is a
    JPEG/PNG/WebP/GIF file of an 8-bit mode and no ``size`` is asked; otherwise that 8-bit RGB
    image (16-bit and float images scaled by their range), resized to ``size`` if asked, is sent
    as PNG.
    """
    from PIL import Image

    if path is None:
        im = Image.new("RGB", (int(blank[0]), int(blank[1])))
        fmt = None
    else:
        im = open_rgb(path)
        with Image.open(path) as opened:
            fmt = None if is_scaled_mode(opened.mode) else opened.format
    if path is not None and size is None and fmt in ("JPEG", "PNG", "WEBP", "GIF"):
        with open(path, "rb") as f:
            data = f.read()
        mime = Image.MIME[fmt]
    else:
        if size is not None:
            im = im.resize((int(size[0]), int(size[1])), Image.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        data, mime = buf.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# -- the answer ---------------------------------------------------------------------------------


def _json_excerpt(value, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "..."


def answer_text(data) -> str:
    """The answer text of a chat-completions response (stripped), or :class:`RequestFailed`.

    ``choices[0].message.content`` must be a string, or a list of content parts whose text
    parts (``{"type": "text", "text": str}``; other part types are skipped) are joined. A
    response without it, a null content (e.g. a reasoning model that spent ``max_tokens``
    before answering) or a content of another type is a server glitch, not an answer: the
    query fails (never cached, counted against ``max_failed_fraction``) with a reason that
    says what came. An empty string IS an answer (``"empty"``, cached). The text is taken
    whole, whatever its length (the cache and the log keep it whole; listings shorten it).
    """
    try:
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise RequestFailed(
            f"no choices[0].message.content in the response: {_json_excerpt(data)}"
        ) from None
    where = "choices[0].message.content"
    if content is None:
        finish = choice.get("finish_reason") if isinstance(choice, dict) else None
        raise RequestFailed(
            f"no answer text in the response: {where} is null (finish_reason: {finish!r})"
        )
    if isinstance(content, list):  # content parts
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("text", ""), str):
                raise RequestFailed(
                    f"no answer text in the response: {where}[{i}] is not a text part: "
                    f"{_json_excerpt(part)}"
                )
            if part.get("type", "text") == "text":
                texts.append(part.get("text", ""))
        content = "".join(texts)
    if not isinstance(content, str):
        what = {bool: "a boolean", int: "a number", float: "a number", dict: "an object"}
        raise RequestFailed(
            f"no answer text in the response: {where} is "
            f"{what.get(type(content), type(content).__name__)} ({_json_excerpt(content)}), "
            "not a string"
        )
    return content.strip()


# -- the backend --------------------------------------------------------------------------------


class OpenAIBackend:
    """Chat completions over HTTP with bounded concurrency, retries and a clear up-front check."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        revision: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_s: float = DEFAULT_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        concurrency: int = DEFAULT_CONCURRENCY,
        extra_body: Mapping | None = None,
        jitter_seed: int | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"mllm.backends.openai.base_url: expected an http(s) URL such as http://localhost:8000/v1, got {base_url!r}"
            )
        parsed = urllib.parse.urlsplit(base_url)
        if not parsed.hostname:
            raise ValueError(
                f"mllm.backends.openai.base_url: no host in {base_url!r}; expected e.g. http://localhost:8000/v1"
            )
        if not isinstance(model, str) or not model:
            raise ValueError(
                f"mllm.backends.openai.model: expected the served model name, got {model!r}"
            )
        numbers = {
            "timeout_s": timeout_s,
            "max_retries": max_retries,
            "backoff_s": backoff_s,
            "max_backoff_s": max_backoff_s,
            "max_wait_s": max_wait_s,
            "concurrency": concurrency,
        }
        for key, value in numbers.items():
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise ValueError(f"mllm.{key}: expected a number, got {value!r}")
        if (
            timeout_s <= 0
            or max_retries < 0
            or backoff_s < 0
            or max_backoff_s < 0
            or max_wait_s < 0
        ):
            raise ValueError(
                "mllm: timeout_s must be > 0; max_retries, backoff_s, max_backoff_s and max_wait_s >= 0; got "
                f"timeout_s={timeout_s}, max_retries={max_retries}, backoff_s={backoff_s}, "
                f"max_backoff_s={max_backoff_s}, max_wait_s={max_wait_s}"
            )
        if int(concurrency) < 1 or int(max_retries) != max_retries:
            raise ValueError(
                f"mllm: concurrency must be an integer >= 1 and max_retries an integer; got "
                f"concurrency={concurrency}, max_retries={max_retries}"
            )
        self.base_url = base_url.rstrip("/")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._path = parsed.path.rstrip("/")
        self.model = model
        self.revision = revision
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_wait_s = float(max_wait_s)
        self.concurrency = int(concurrency)
        self.extra_body = dict(extra_body or {})
        self._rng = random.Random(jitter_seed)
        self._sleep = time.sleep  # tests may replace it
        self.api_key_env = api_key_env
        self._api_key: str | None = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise BackendError(
                    f"mllm.backends.openai.api_key_env names the environment variable {api_key_env!r}, but it is not set"
                )
            self._api_key = key

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def identity(self) -> dict:
        return {
            "backend": self.name,
            "model_id": self.model,
            "revision": self.revision,
            "settings": {},
        }

    # -- HTTP ---------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, str, dict]:
        """(connection, request target, extra headers), through a proxy when the environment
        names one for this scheme and ``no_proxy`` does not exempt the host."""
        cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        target = self._path
        proxy = urllib.request.getproxies().get(self._scheme)
        if proxy and urllib.request.proxy_bypass(f"{self._host}:{self._port}"):
            proxy = None
        if not proxy:
            return cls(self._host, self._port, timeout=timeout), target, {}
        p = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        auth = {}
        if p.username:
            cred = f"{urllib.parse.unquote(p.username)}:{urllib.parse.unquote(p.password or '')}"
            auth = {"Proxy-Authorization": "Basic " + base64.b64encode(cred.encode()).decode()}
        pport = p.port or (443 if p.scheme == "https" else 80)
        if self._scheme == "https":  # a CONNECT tunnel through the proxy
            conn = http.client.HTTPSConnection(p.hostname, pport, timeout=timeout)
            conn.set_tunnel(self._host, self._port, headers=auth)
            return conn, target, {}
        pcls = http.client.HTTPSConnection if p.scheme == "https" else http.client.HTTPConnection
        return (
            pcls(p.hostname, pport, timeout=timeout),
            f"http://{self._host}:{self._port}{target}",
            auth,
        )

    def _exchange(self, method: str, path: str, data: bytes | None, headers: dict):
        """One HTTP exchange within ``timeout_s`` in all -> (status, headers, body bytes).

        A watchdog timer shuts the socket down at the deadline; every socket operation also
        gets the time left as its own timeout. Raises :class:`_Retryable` on a timeout or a
        connection error.
        """
        start = time.monotonic()
        deadline = start + self.timeout_s
        timed_out = threading.Event()
        holder: dict = {}
        lock = threading.Lock()

        def cut() -> None:
            with lock:
                timed_out.set()
                sock = holder.get("sock")
                if sock is not None:
                    try:  # the plain socket's shutdown, also for TLS: it wakes a blocked recv/send
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass

        watchdog = threading.Timer(self.timeout_s, cut)
        watchdog.daemon = True
        watchdog.start()
        conn = None
        try:
            conn, target, extra = self._connection(self.timeout_s)
            conn.connect()
            with lock:
                holder["sock"] = conn.sock
                if timed_out.is_set():
                    raise TimeoutError
            conn.request(method, target + path, body=data, headers={**headers, **extra})
            resp = conn.getresponse()
            chunks = []
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or timed_out.is_set():
                    raise TimeoutError
                holder["sock"].settimeout(left)
                chunk = resp.read1(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
            if timed_out.is_set():  # the watchdog's shutdown looks like the end of the body
                raise TimeoutError
            if resp.length:  # Content-Length promised more than came
                raise http.client.IncompleteRead(b"".join(chunks), resp.length)
            return resp.status, resp.headers, b"".join(chunks)
        except Exception as err:
            if timed_out.is_set() or isinstance(err, TimeoutError):
                raise _Retryable(
                    f"timed out after {self.timeout_s:g} s (the whole request: connect, send, read)"
                ) from None
            if isinstance(err, (OSError, http.client.HTTPException)):
                text = self._scrub(f"{type(err).__name__}: {err}")
                raise _Retryable(f"connection error: {text}") from None
            raise
        finally:
            watchdog.cancel()
            if conn is not None:
                conn.close()

    def _request(self, method: str, path: str, body: Mapping | None = None):
        """One HTTP exchange -> parsed JSON. Raises _HTTPStatus, _Retryable."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(body).encode("utf-8") if body is not None else None
        status, resp_headers, raw = self._exchange(method, path, data, headers)
        if status >= 400:
            text = self._scrub(raw[:300].decode("utf-8", "replace"))
            if status >= 500 or status in (408, 429):
                retry_after = None
                if status in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(resp_headers.get("Retry-After"))
                raise _Retryable(f"HTTP {status}: {text}", retry_after)
            raise _HTTPStatus(status, text)
        try:
            return json.loads(raw)
        except ValueError:
            raise _Retryable(
                f"malformed JSON in the response: {self._scrub(raw[:100].decode('utf-8', 'replace'))!r}"
            ) from None

    def retry_delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``retry``: the jittered back-off, or the server's
        ``Retry-After`` when that is longer."""
        delay = backoff_delay(retry, self.backoff_s, self.max_backoff_s, self._rng)
        return delay if retry_after is None else max(delay, retry_after)

    def _with_retries(self, method: str, path: str, body: Mapping | None = None, log=logger.debug):
        waited = 0.0
        for attempt in range(self.max_retries + 1):
            try:
                return self._request(method, path, body)
            except _Retryable as err:
                tries = f"{attempt + 1} tr{'y' if attempt == 0 else 'ies'}"
                if attempt == self.max_retries:
                    raise RequestFailed(f"{err} (gave up after {tries})") from None
                delay = self.retry_delay(attempt, err.retry_after)
                if waited + delay > self.max_wait_s:
                    asked = (
                        f"the server asked to retry after {err.retry_after:g} s"
                        if err.retry_after is not None and err.retry_after >= delay
                        else f"the next back-off is {delay:.1f} s"
                    )
                    raise RequestFailed(
                        f"{err} (gave up after {tries}: {asked}, beyond what is left of "
                        f"max_wait_s={self.max_wait_s:g} s)"
                    ) from None
                log(
                    "mllm %s %s%s: %s; retry %d/%d in %.1f s",
                    method, self.base_url, path, err, attempt + 1, self.max_retries, delay,
                )  # fmt: skip
                self._sleep(delay)
                waited += delay
        raise AssertionError("unreachable")

    # -- check --------------------------------------------------------------------------------
    def _key_error(self, code: int) -> BackendError:
        where = (
            f"the environment variable {self.api_key_env!r}"
            if self.api_key_env
            else "mllm.backends.openai.api_key_env (none set)"
        )
        return BackendError(
            f"the server at {self.base_url} rejected the API key (HTTP {code}); check {where}"
        )

    def check(self) -> None:
        """Fail early, with one clear :class:`BackendError`, on a wrong key or an unknown model."""
        try:
            listing = self._with_retries("GET", "/models", log=logger.warning)
        except _HTTPStatus as err:
            if err.code in (401, 403):
                raise self._key_error(err.code) from None
            if err.code != 404:
                raise BackendError(
                    f"checking {self.base_url}/models failed: HTTP {err.code}: {err.body}"
                ) from None
            listing = None  # the server has no /models: probe the model with a 1-token request
        except RequestFailed as err:
            raise BackendError(f"cannot reach the MLLM server at {self.base_url}: {err}") from None
        if listing is not None:
            try:
                served = [m["id"] for m in listing["data"]]
            except (KeyError, TypeError) as err:
                raise BackendError(
                    f"{self.base_url}/models did not return a model list: {err!r}"
                ) from None
            if self.model not in served:
                raise BackendError(
                    f"model {self.model!r} is not served by {self.base_url}; it serves: {', '.join(served) or '(nothing)'}"
                )
            return
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 1,
            "temperature": 0,
        }
        try:
            self._with_retries("POST", "/chat/completions", body, log=logger.warning)
        except _HTTPStatus as err:
            if err.code in (401, 403):
                raise self._key_error(err.code) from None
            if err.code == 404:
                raise BackendError(
                    f"model {self.model!r} is unknown to {self.base_url} (HTTP 404): {err.body}"
                ) from None
            raise BackendError(
                f"checking model {self.model!r} at {self.base_url} failed: HTTP {err.code}: {err.body}"
            ) from None
        except RequestFailed as err:
            raise BackendError(f"cannot reach the MLLM server at {self.base_url}: {err}") from None

    # -- generation ---------------------------------------------------------------------------
    def _body(self, query: Query, prompt: str, settings: Mapping) -> dict:
        if query.kind == "ens":
            image = _encode_image(query.image, settings.get("image_size"))
        else:
            blank = settings.get("blank_image_size")
            image = _encode_image(None, None, blank) if blank is not None else None
        content: list[dict] = []
        if image is not None:
            content.append({"type": "image_url", "image_url": {"url": image}})
        content.append({"type": "text", "text": prompt})
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": int(settings["max_new_tokens"]),
            "temperature": 0,
        }
        body.update(self.extra_body)
        return body

    def _one(self, query: Query, prompt: str, settings: Mapping) -> str | Exception:
        try:
            body = self._body(query, prompt, settings)
        except Exception as err:
            return RequestFailed(f"cannot read image {query.image!r}: {failure_reason(err)}")
        try:
            data = self._with_retries("POST", "/chat/completions", body)
        except _HTTPStatus as err:
            return RequestFailed(f"HTTP {err.code}: {err.body}")
        except RequestFailed as err:
            return err
        try:
            return answer_text(data)
        except RequestFailed as err:
            return RequestFailed(self._scrub(str(err)))

    def generate(
        self, queries: Sequence[Query], prompts: Sequence[str], settings: Mapping
    ) -> list[str | Exception]:
        """Raw texts (or per-query :class:`RequestFailed`), requests sent concurrently."""
        if len(queries) != len(prompts):
            raise ValueError(f"got {len(queries)} queries but {len(prompts)} prompts")
        if not queries:
            return []
        workers = min(self.concurrency, len(queries))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mllm-http") as pool:
            return list(
                pool.map(
                    lambda qp: self._one(qp[0], qp[1], settings), zip(queries, prompts, strict=True)
                )
            )


def from_config(config: Mapping) -> OpenAIBackend:
    """Build from the ``mllm`` config section (``backend: openai``); absent keys take the
    module's ``DEFAULT_*`` values."""
    for key in ("base_url", "model"):
        if key not in config:
            raise ValueError(f"mllm.backends.openai.{key}: required for backend 'openai'")
    return OpenAIBackend(
        str(config["base_url"]),
        str(config["model"]),
        api_key_env=config.get("api_key_env"),
        revision=str(config.get("revision") or ""),
        timeout_s=config.get("timeout_s", DEFAULT_TIMEOUT_S),
        max_retries=config.get("max_retries", DEFAULT_MAX_RETRIES),
        backoff_s=config.get("backoff_s", DEFAULT_BACKOFF_S),
        max_backoff_s=config.get("max_backoff_s", DEFAULT_MAX_BACKOFF_S),
        max_wait_s=config.get("max_wait_s", DEFAULT_MAX_WAIT_S),
        concurrency=config.get("concurrency", DEFAULT_CONCURRENCY),
        extra_body=config.get("extra_body"),
    )
