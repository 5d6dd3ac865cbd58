"""The OpenAI-compatible HTTP backend (vLLM, SGLang, Ollama, or any ``/v1/chat/completions``).

Config (the ``mllm`` section, ``backend: openai``)::

    base_url: http://localhost:8000/v1   # required; the part before /chat/completions
    model: llava-hf/llava-1.5-7b-hf      # required; the served model name
    api_key_env: OPENAI_API_KEY          # optional: NAME of the environment variable with the key
    revision: ""                         # optional: pins the served weights in the cache key
    timeout_s: 120                       # per request
    max_retries: 4                       # retries after the first try
    backoff_s: 1.0                       # first retry delay; doubles each retry, capped at 30 s
    concurrency: 8                       # requests in flight at once (a thread pool)
    extra_body: {}                       # merged into each request (e.g. {seed: 0})

Requests are greedy (``temperature: 0``) with ``max_tokens`` from the generation settings; an
image is sent as a base64 ``data:`` URL, after the resize asked by the settings (PNG then).

**Secrets.** The API key is read from the environment variable named by ``api_key_env`` when
the backend is built, sent only in the ``Authorization`` header, and never appears in
``identity()``, ``repr()``, error messages, cache keys or records. Neither does ``base_url``
(the same model behind another address gives the same answers).

**Failures.** 5xx and 429 responses, timeouts, reset or refused connections and malformed JSON
are retried with exponential backoff; when the retries are spent, that query's answer is
recorded as failed (with the reason) and the run goes on. Other 4xx responses fail the query at
once. :meth:`OpenAIBackend.check` runs before any answering: a wrong key (401/403), an unknown
model (missing from ``/models``, or 404) or an unreachable server raise one
:class:`~ants.mllm.base.BackendError`.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from ants.mllm.base import BackendError, Query

CONFIG_KEYS = (
    "base_url",
    "model",
    "api_key_env",
    "revision",
    "timeout_s",
    "max_retries",
    "backoff_s",
    "concurrency",
    "extra_body",
)
MAX_BACKOFF_S = 30.0


class RequestFailed(RuntimeError):
    """One request failed for good (after its retries); the message is the recorded reason."""


class _Retryable(Exception):
    pass


class _HTTPStatus(Exception):
    def __init__(self, code: int, body: str) -> None:
        super().__init__(f"HTTP {code}: {body}")
        self.code = code
        self.body = body


def _encode_image(
    path: str | None, size: Sequence[int] | None, blank: Sequence[int] | None = None
) -> str:
    """A ``data:`` URL: the file as is (JPEG/PNG/WebP/GIF), else re-encoded as PNG after a resize."""
    from PIL import Image

    if path is None:
        im = Image.new("RGB", (int(blank[0]), int(blank[1])))
        fmt = None
    else:
        with Image.open(path) as opened:
            fmt = opened.format
            im = opened.convert("RGB")
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
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        concurrency: int = 8,
        extra_body: Mapping | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"mllm.base_url: expected an http(s) URL such as http://localhost:8000/v1, got {base_url!r}"
            )
        if not isinstance(model, str) or not model:
            raise ValueError(f"mllm.model: expected the served model name, got {model!r}")
        if timeout_s <= 0 or max_retries < 0 or backoff_s < 0 or int(concurrency) < 1:
            raise ValueError(
                "mllm: timeout_s must be > 0, max_retries >= 0, backoff_s >= 0 and concurrency >= 1; got "
                f"timeout_s={timeout_s}, max_retries={max_retries}, backoff_s={backoff_s}, concurrency={concurrency}"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.revision = revision
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.concurrency = int(concurrency)
        self.extra_body = dict(extra_body or {})
        self.api_key_env = api_key_env
        self._api_key: str | None = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise BackendError(
                    f"mllm.api_key_env names the environment variable {api_key_env!r}, but it is not set"
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

    def _request(self, method: str, path: str, body: Mapping | None = None):
        """One HTTP exchange -> parsed JSON. Raises _HTTPStatus, _Retryable."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = json.dumps(body).encode("utf-8") if body is not None else None
        req = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            text = self._scrub(err.read().decode("utf-8", "replace")[:300])
            if err.code >= 500 or err.code in (408, 429):
                raise _Retryable(f"HTTP {err.code}: {text}") from None
            raise _HTTPStatus(err.code, text) from None
        except TimeoutError as err:
            raise _Retryable(f"timed out after {self.timeout_s:g} s") from err
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, TimeoutError):
                raise _Retryable(f"timed out after {self.timeout_s:g} s") from err
            raise _Retryable(f"connection error: {reason}") from err
        except (ConnectionError, http.client.HTTPException, OSError) as err:
            raise _Retryable(f"connection error: {type(err).__name__}: {err}") from err
        try:
            return json.loads(raw)
        except ValueError:
            raise _Retryable(
                f"malformed JSON in the response: {self._scrub(raw[:100].decode('utf-8', 'replace'))!r}"
            ) from None

    def _with_retries(self, method: str, path: str, body: Mapping | None = None):
        delay = self.backoff_s
        for attempt in range(self.max_retries + 1):
            try:
                return self._request(method, path, body)
            except _Retryable as err:
                if attempt == self.max_retries:
                    raise RequestFailed(f"{err} (gave up after {attempt + 1} tries)") from None
                time.sleep(min(delay, MAX_BACKOFF_S))
                delay *= 2
        raise AssertionError("unreachable")

    # -- check --------------------------------------------------------------------------------
    def _key_error(self, code: int) -> BackendError:
        where = (
            f"the environment variable {self.api_key_env!r}"
            if self.api_key_env
            else "mllm.api_key_env (none set)"
        )
        return BackendError(
            f"the server at {self.base_url} rejected the API key (HTTP {code}); check {where}"
        )

    def check(self) -> None:
        """Fail early, with one clear :class:`BackendError`, on a wrong key or an unknown model."""
        try:
            listing = self._with_retries("GET", "/models")
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
            self._with_retries("POST", "/chat/completions", body)
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
            return RequestFailed(f"cannot read image {query.image!r}: {type(err).__name__}: {err}")
        try:
            data = self._with_retries("POST", "/chat/completions", body)
        except _HTTPStatus as err:
            return RequestFailed(f"HTTP {err.code}: {err.body}")
        except RequestFailed as err:
            return err
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return RequestFailed(
                f"no choices[0].message.content in the response: {self._scrub(json.dumps(data)[:200])}"
            )
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return (content or "").strip()

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
    """Build from the ``mllm`` config section (``backend: openai``)."""
    for key in ("base_url", "model"):
        if key not in config:
            raise ValueError(f"mllm.{key}: required for backend 'openai'")
    return OpenAIBackend(
        str(config["base_url"]),
        str(config["model"]),
        api_key_env=config.get("api_key_env"),
        revision=str(config.get("revision", "")),
        timeout_s=float(config.get("timeout_s", 120.0)),
        max_retries=int(config.get("max_retries", 4)),
        backoff_s=float(config.get("backoff_s", 1.0)),
        concurrency=int(config.get("concurrency", 8)),
        extra_body=config.get("extra_body"),
    )
