"""The OpenAI-compatible backend against a scripted local HTTP server (127.0.0.1, random port)."""

import base64
import io
import json
import random
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from _images import png_header_only
from PIL import Image

from ants.answers_log import answer_records, read_answer_log, write_answer_log
from ants.mllm.answering import MAX_ANSWER_CHARS, CachedAnswerer, shorten
from ants.mllm.base import AnswerFailureError, BackendError, Query
from ants.mllm.cache import AnswerCache
from ants.mllm.openai_http import (
    DEFAULT_BACKOFF_S,
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_WAIT_S,
    OpenAIBackend,
    RequestFailed,
    _encode_image,
    answer_text,
    backoff_bounds,
    backoff_delay,
    backoff_schedule,
    from_config,
    parse_retry_after,
)
from ants.mllm.prompts import Prompting

KEY = "sk-test-THE-SECRET-0123456789"
SETTINGS = {"max_new_tokens": 20, "blank_image_size": None}
FAST = {"timeout_s": 0.4, "max_retries": 2, "backoff_s": 0.01}
HUGE = 1 << 20  # characters of the [huge] answer


class Handler(BaseHTTPRequestHandler):
    """Behaviour chosen by a tag in the prompt: [ok] [flaky] [down] [slow] [slowonce] [close]
    [closeonce] [badjson] [badjsononce] [nochoices] [wait]; glitches [nullcontent] (content
    null), [intcontent] (content 42), [huge] (a 1 MiB answer); rate limits [limited] (429 with
    Retry-After: 1, once), [busydate] (503 with a Retry-After HTTP-date 2 s ahead, once),
    [limitedlong] (429, Retry-After: 3600), [limitednohdr] (429 without the header, once);
    tricklers [trickle] (the body, one byte every 0.3 s) and [trickleheaders] (the headers).
    With ``state["healthy"]`` set, every tag gets a normal answer (the server was fixed)."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, code, payload, raw=None, headers=()):
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self):
        st = self.server.state
        if self.path.startswith("http://"):  # asked as a proxy: note the target, serve it
            st["proxied"].append(self.path)
            self.path = "/" + self.path.split("/", 3)[3]
        st["auth"].append(self.headers.get("Authorization"))
        if st["key"] is not None and self.headers.get("Authorization") != f"Bearer {st['key']}":
            self._send(401, {"error": {"message": "Incorrect API key provided"}})
            return False
        return True

    def do_GET(self):
        st = self.server.state
        if not self._authorised():
            return
        if self.path == "/v1/models" and st["models"] is not None:
            self._send(
                200,
                {"object": "list", "data": [{"id": m, "object": "model"} for m in st["models"]]},
            )
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        st = self.server.state
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self._authorised():
            return
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": "not found"})
            return
        if body["model"] not in st["known"]:
            self._send(404, {"error": {"message": f"The model `{body['model']}` does not exist."}})
            return
        content = body["messages"][0]["content"]
        text = (
            content
            if isinstance(content, str)
            else [p for p in content if p["type"] == "text"][0]["text"]
        )
        tag = text[text.index("[") + 1 : text.index("]")] if "[" in text else "ok"
        with st["lock"]:
            st["times"].setdefault(tag, []).append(time.monotonic())
            st["bodies"].append(body)
            st["counts"][tag] = n = st["counts"].get(tag, 0) + 1
            st["in_flight"] += 1
            st["max_in_flight"] = max(st["max_in_flight"], st["in_flight"])
        try:
            self._respond(tag, n, text)
        except OSError:  # the client went away (timeouts)
            pass
        finally:
            with st["lock"]:
                st["in_flight"] -= 1

    def _respond(self, tag, n, text):
        ok = {
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": f" answer to {text} "}}
            ]
        }
        if self.server.state["healthy"]:  # the server was fixed: every tag is answered
            self._send(200, ok)
        elif tag == "flaky" and n <= 2 or tag == "down":
            self._send(500, {"error": "internal error"})
        elif tag == "slow" or tag == "slowonce" and n == 1:
            time.sleep(1.0)
            self._send(200, ok)
        elif tag == "close" or tag == "closeonce" and n == 1:
            self.close_connection = True  # no response at all
        elif tag == "badjson" or tag == "badjsononce" and n == 1:
            self._send(200, None, raw=b'{"choices": [ {"message": ')
        elif tag == "nochoices":
            self._send(200, {"id": "x"})
        elif tag in ("nullcontent", "intcontent"):
            content = None if tag == "nullcontent" else 42
            message = {"role": "assistant", "content": content}
            self._send(
                200, {"choices": [{"index": 0, "message": message, "finish_reason": "length"}]}
            )
        elif tag == "huge":  # a runaway answer of exactly HUGE characters (after stripping)
            head = "1. koi\n2. carp\n"
            content = head + ("and so on " * (HUGE // 10))[: HUGE - len(head)]
            self._send(200, {"choices": [{"index": 0, "message": {"content": content}}]})
        elif tag == "forbidden":
            self._send(400, {"error": "bad request"})
        elif tag == "limited" and n == 1:
            self._send(429, {"error": "rate limited"}, headers=[("Retry-After", "1")])
        elif tag == "busydate" and n == 1:
            when = formatdate(time.time() + 2, usegmt=True)
            self._send(503, {"error": "overloaded"}, headers=[("Retry-After", when)])
        elif tag == "limitedlong":
            self._send(429, {"error": "rate limited"}, headers=[("Retry-After", "3600")])
        elif tag == "limitednohdr" and n == 1:
            self._send(429, {"error": "rate limited"})
        elif tag in ("trickle", "trickleheaders"):
            self._trickle(tag, json.dumps(ok).encode())
        else:
            if tag == "wait":
                time.sleep(0.15)
            self._send(200, ok)

    def _trickle(self, tag, body):
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
        )
        if tag == "trickle":
            self.wfile.write(head)
            self.wfile.flush()
            slow = body
        else:
            slow = head + body
        for i in range(len(slow)):  # ~ 0.3 s a byte: far longer than any timeout here
            self.wfile.write(slow[i : i + 1])
            self.wfile.flush()
            time.sleep(0.3)
        self.close_connection = True


def _serve(state, port=0):
    """A scripted server on 127.0.0.1 (``port=0``: a free one), serving in a thread."""
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.state = state
    srv.thread = threading.Thread(
        target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    srv.thread.start()
    return srv


def _stop(srv):
    srv.shutdown()
    srv.server_close()
    srv.thread.join(5)


@pytest.fixture
def server():
    srv = _serve(
        {
            "key": KEY,
            "models": ["served-model"],
            "known": ["served-model"],
            "counts": {},
            "bodies": [],
            "auth": [],
            "times": {},
            "proxied": [],
            "lock": threading.Lock(),
            "in_flight": 0,
            "max_in_flight": 0,
            "healthy": False,
        }
    )
    yield srv
    _stop(srv)


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("ANTS_TEST_API_KEY", KEY)
    return "ANTS_TEST_API_KEY"


def _backend(server, key_env, model="served-model", **kw):
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return OpenAIBackend(url, model, api_key_env=key_env, **{**FAST, **kw})


def _ask(backend, tags):
    queries = [Query("vsnl", f"class{i}") for i in range(len(tags))]
    return backend.generate(queries, [f"[{t}] q{i}" for i, t in enumerate(tags)], SETTINGS)


def test_success_and_the_request(server, key_env):
    out = _ask(_backend(server, key_env), ["ok"])
    assert out == ["answer to [ok] q0"]  # stripped
    body = server.state["bodies"][0]
    assert body["model"] == "served-model" and body["temperature"] == 0 and body["max_tokens"] == 20
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "[ok] q0"}
    ]  # text-only: no image
    assert server.state["auth"] == [f"Bearer {KEY}"]


def test_retries_then_success(server, key_env):
    out = _ask(_backend(server, key_env), ["flaky", "slowonce", "closeonce", "badjsononce"])
    assert out == [
        "answer to [flaky] q0",
        "answer to [slowonce] q1",
        "answer to [closeonce] q2",
        "answer to [badjsononce] q3",
    ]
    assert server.state["counts"] == {"flaky": 3, "slowonce": 2, "closeonce": 2, "badjsononce": 2}


@pytest.mark.parametrize(
    ("tag", "reason", "tries"),
    [
        ("down", "HTTP 500", 3),
        ("slow", "timed out after 0.4 s", 3),
        ("close", "connection error", 3),
        ("badjson", "malformed JSON in the response", 3),
        ("nochoices", "no choices[0].message.content in the response", 1),
        ("forbidden", "HTTP 400", 1),
    ],
)
def test_recorded_failures(server, key_env, tag, reason, tries):
    out = _ask(_backend(server, key_env), [tag, "ok"])
    assert isinstance(out[0], Exception) and reason in str(out[0])
    if tries > 1:
        assert f"gave up after {tries} tries" in str(out[0])
    assert out[1] == "answer to [ok] q1"  # the others go on
    assert server.state["counts"][tag] == tries


def test_failures_become_failed_answers_and_are_retried(server, key_env, tmp_path):
    cache = AnswerCache(tmp_path / "c.sqlite")
    backend = _backend(server, key_env)
    prompting = Prompting(
        "llava",
        prompts={"vsnl": "[{c}] similar to {c}?"},
        generation={"vsnl": {"blank_image_size": None}},
    )
    queries = [Query("vsnl", "down"), Query("vsnl", "ok")]
    answers = CachedAnswerer(backend, cache, prompting, max_failed_fraction=1.0)(queries)
    assert [a.status for a in answers] == ["failed", "unparsable"]
    assert "HTTP 500" in answers[0].reason and answers[0].raw_text == ""
    assert len(cache) == 1
    with pytest.raises(AnswerFailureError, match="1 of 2 distinct MLLM queries failed"):
        CachedAnswerer(backend, cache, prompting)(queries)  # the default bound, 0, fails loudly
    assert server.state["counts"] == {"down": 6, "ok": 1}  # only the failed one is asked again


# -- server faults through the cached answerer (issue 19 item 3, issue 21 item 2) -----------

#: the class name is the server's tag: "[{c}] similar to {c}?"
TAGGED = Prompting(
    "llava",
    prompts={"vsnl": "[{c}] similar to {c}?"},
    generation={"vsnl": {"blank_image_size": None}},
)
#: tags the server answers after retries (or whole, however long)
RECOVERED = ("ok", "flaky", "limited", "huge")
#: tags that fail their query, with the exact reason recorded (timeout_s=0.6, max_retries=2)
FAILING = {
    "nullcontent": (
        "no answer text in the response: choices[0].message.content is null "
        "(finish_reason: 'length')"
    ),
    "intcontent": (
        "no answer text in the response: choices[0].message.content is a number (42), not a string"
    ),
    "nochoices": 'no choices[0].message.content in the response: {"id": "x"}',
    "badjson": (
        'malformed JSON in the response: \'{"choices": [ {"message": \' (gave up after 3 tries)'
    ),
    "down": 'HTTP 500: {"error": "internal error"} (gave up after 3 tries)',
    "slow": "timed out after 0.6 s (the whole request: connect, send, read) (gave up after 3 tries)",
    "limitedlong": (
        'HTTP 429: {"error": "rate limited"} (gave up after 1 try: the server asked to retry '
        "after 3600 s, beyond what is left of max_wait_s=300 s)"
    ),
}


def _asked(server, since):
    """Requests per tag since the ``since`` snapshot of the server's counts."""
    now = server.state["counts"]
    return {t: now[t] - since.get(t, 0) for t in now if now[t] != since.get(t, 0)}


@pytest.mark.faults
def test_server_faults_are_failed_queries_never_cached_and_asked_again(server, key_env, tmp_path):
    cache = AnswerCache(tmp_path / "c.sqlite")
    backend = _backend(server, key_env, timeout_s=0.6, max_wait_s=300)
    tags = [*RECOVERED, *FAILING]
    queries = [Query("vsnl", t) for t in tags]
    with pytest.raises(AnswerFailureError) as err:  # the default bound, 0: any failure
        CachedAnswerer(backend, cache, TAGGED)(queries)
    answers = dict(zip(tags, err.value.answers, strict=True))
    for tag, reason in FAILING.items():
        assert (answers[tag].status, answers[tag].reason, answers[tag].raw_text) == (
            "failed",
            reason,
            "",
        ), tag
    assert [answers[t].status for t in RECOVERED] == [
        "unparsable",
        "unparsable",
        "unparsable",
        "ok",
    ]
    n, total = len(FAILING), len(tags)
    shown = "; ".join(repr(r) for r in list(FAILING.values())[:3])
    assert str(err.value) == (
        f"{n} of {total} distinct MLLM queries failed (more than max_failed_fraction=0): "
        f"{shown}; and {n - 3} other reasons. Failed answers are never cached; the "
        f"{total - n} answered ones are in the cache, so a re-run asks only the {n} failed "
        "ones again."
    )
    assert (err.value.failed, err.value.total) == (n, total)
    # only what was answered is cached (also when it took retries), never a failure
    stored = cache.get_many([a.cache_key for a in err.value.answers])
    assert set(stored) == {answers[t].cache_key for t in RECOVERED} and len(cache) == 4
    assert server.state["counts"]["flaky"] == 3 and server.state["counts"]["limited"] == 2

    # a 1 MiB answer is an answer: cached and logged whole, cut only where it is listed
    huge = stored[answers["huge"].cache_key].raw_text
    assert len(huge) == HUGE and huge == answers["huge"].raw_text
    assert answers["huge"].negatives[:2] == ("koi", "carp")
    records = answer_records(queries, err.value.answers, stream_id="s", batch_index=0)
    logged = read_answer_log(write_answer_log(tmp_path / "answers.parquet", records))
    assert logged["raw_text"].str.len().tolist()[tags.index("huge")] == HUGE
    listed = shorten(huge)
    assert len(listed) == MAX_ANSWER_CHARS and listed.endswith("... [1,048,576 characters]")

    # failures count against max_failed_fraction: their exact share passes; nothing more cached
    before = dict(server.state["counts"])
    again = CachedAnswerer(backend, cache, TAGGED, max_failed_fraction=n / total)(queries)
    assert [a.status for a in again].count("failed") == n and len(cache) == 4
    assert set(_asked(server, before)) == set(FAILING)  # the others were cache hits

    # the server is fixed: a healthy run asks exactly the failed queries, once each
    server.state["healthy"] = True
    before = dict(server.state["counts"])
    healed = CachedAnswerer(backend, cache, TAGGED)(queries)
    assert _asked(server, before) == dict.fromkeys(FAILING, 1)
    assert "failed" not in [a.status for a in healed] and len(cache) == total
    before = dict(server.state["counts"])
    CachedAnswerer(backend, cache, TAGGED)(queries)
    assert _asked(server, before) == {}  # everything is a hit now


def test_refused_connections_fail_the_queries_and_a_restarted_server_gets_only_them(
    server, key_env, tmp_path
):
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/v1"
    cache = AnswerCache(tmp_path / "c.sqlite")
    backend = _backend(server, key_env)
    answerer = CachedAnswerer(backend, cache, TAGGED, max_failed_fraction=1.0)
    assert answerer([Query("vsnl", "ok")])[0].status == "unparsable"  # checked, one answer
    _stop(server)  # the server goes away mid-run: connections are refused
    refused = "connection error: ConnectionRefusedError: [Errno 111] Connection refused"
    queries = [Query("vsnl", t) for t in ("ok", "one", "two")]
    out = answerer(queries)
    assert [(a.status, a.reason) for a in out] == [
        ("unparsable", "no numbered line like '1. name' in the answer"),  # a cache hit
        ("failed", f"{refused} (gave up after 3 tries)"),
        ("failed", f"{refused} (gave up after 3 tries)"),
    ]
    assert len(cache) == 1
    # a new run against the dead server fails before asking anything (the up-front check)
    with pytest.raises(BackendError) as err:
        CachedAnswerer(backend, cache, TAGGED)(queries)
    assert (
        str(err.value)
        == f"cannot reach the MLLM server at {url}: {refused} (gave up after 3 tries)"
    )
    # the server is back on the same port: exactly the two failed queries are asked
    revived = _serve({**server.state, "counts": {}}, port)
    try:
        out = CachedAnswerer(backend, cache, TAGGED)(queries)
        assert revived.state["counts"] == {"one": 1, "two": 1}
        assert [a.status for a in out] == ["unparsable"] * 3 and len(cache) == 3
    finally:
        _stop(revived)


@pytest.mark.parametrize(
    ("data", "result"),
    [
        ({"choices": [{"message": {"content": "  a red car \n"}}]}, "a red car"),
        ({"choices": [{"message": {"content": ""}}]}, ""),  # an empty answer is an answer
        (
            {
                "choices": [
                    {
                        "message": {
                            "content": [
                                {"type": "text", "text": "a red "},
                                {"type": "image_url", "image_url": {"url": "data:"}},
                                {"type": "text", "text": "car"},
                            ]
                        }
                    }
                ]
            },
            "a red car",
        ),
        (
            {"choices": [{"message": {"content": None}}]},
            "no answer text in the response: choices[0].message.content is null "
            "(finish_reason: None)",
        ),
        (
            {"choices": [{"message": {"content": {"text": "x"}}}]},
            "no answer text in the response: choices[0].message.content is an object "
            '({"text": "x"}), not a string',
        ),
        (
            {"choices": [{"message": {"content": True}}]},
            "no answer text in the response: choices[0].message.content is a boolean (true), "
            "not a string",
        ),
        (
            {"choices": [{"message": {"content": [{"type": "text", "text": 7}]}}]},
            "no answer text in the response: choices[0].message.content[0] is not a text part: "
            '{"type": "text", "text": 7}',
        ),
        (
            {"choices": [{"message": {"content": ["a", "b"]}}]},
            'no answer text in the response: choices[0].message.content[0] is not a text part: "a"',
        ),
        ({"choices": []}, 'no choices[0].message.content in the response: {"choices": []}'),
        ([1, 2], "no choices[0].message.content in the response: [1, 2]"),
    ],
)
def test_answer_text_of_a_response(data, result):
    if result.startswith("no "):
        with pytest.raises(RequestFailed) as err:
            answer_text(data)
        assert str(err.value) == result
    else:
        assert answer_text(data) == result


def test_concurrency_is_bounded(server, key_env):
    out = _ask(_backend(server, key_env, concurrency=2), ["wait"] * 6)
    assert all(isinstance(t, str) for t in out)
    assert server.state["max_in_flight"] == 2


def test_images_are_sent_as_data_urls(server, key_env, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(
        path
    )
    backend = _backend(server, key_env)
    q = Query("ens", "tench", image=str(path))
    backend.generate([q], ["describe"], {"max_new_tokens": 10, "image_size": [56, 56]})
    backend.generate([q], ["describe"], {"max_new_tokens": 10, "image_size": None})
    backend.generate(
        [Query("vsnl", "tench")], ["similar"], {"max_new_tokens": 10, "blank_image_size": [28, 28]}
    )
    urls = [b["messages"][0]["content"][0]["image_url"]["url"] for b in server.state["bodies"]]
    resized = Image.open(io.BytesIO(base64.b64decode(urls[0].split(",", 1)[1])))
    assert urls[0].startswith("data:image/png;base64,") and resized.size == (56, 56)
    assert base64.b64decode(urls[1].split(",", 1)[1]) == path.read_bytes()  # the file as is
    blank = Image.open(io.BytesIO(base64.b64decode(urls[2].split(",", 1)[1])))
    assert blank.size == (28, 28) and blank.getextrema() == ((0, 0), (0, 0), (0, 0))
    assert [b["messages"][0]["content"][1] for b in server.state["bodies"]][0] == {
        "type": "text",
        "text": "describe",
    }


def _sent_image(data_url: str) -> tuple[str, Image.Image]:
    mime, b64 = data_url.split(",", 1)
    return mime, Image.open(io.BytesIO(base64.b64decode(b64)))


def test_16bit_image_is_sent_as_its_scaled_8bit_png(tmp_path):
    g8 = np.random.default_rng(2).integers(0, 256, (20, 30), dtype=np.uint8)
    path = tmp_path / "deep.png"
    Image.fromarray(g8.astype(np.uint16) * 257).save(path)  # 0..255 -> 0..65535 exactly
    with Image.open(path) as raw:
        assert raw.mode == "I;16"
    want = np.repeat(g8[..., None], 3, axis=2)
    mime, sent = _sent_image(_encode_image(str(path), None))  # not the 16-bit file as is
    assert mime == "data:image/png;base64" and sent.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(sent), want)
    mime, small = _sent_image(_encode_image(str(path), [15, 10]))
    assert small.mode == "RGB" and small.size == (15, 10)
    assert np.asarray(small).max() > 200  # resized from the scaled image, not Pillow's clipped one
    flat = tmp_path / "flat.png"
    Image.fromarray(want).save(flat)
    assert _encode_image(str(flat), None).split(",", 1)[1] == base64.b64encode(
        flat.read_bytes()
    ).decode("ascii")  # an 8-bit PNG still goes as is


def test_unreadable_or_over_limit_images_fail_only_their_query(server, key_env, tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    big = tmp_path / "big.png"
    big.write_bytes(png_header_only(12_000, 10_000))  # 1.2 * 10^8 pixels claimed, 60 bytes
    queries = [Query("ens", "tench", image=str(p)) for p in (junk, good, big)]
    out = _backend(server, key_env).generate(queries, ["a", "b", "c"], {"max_new_tokens": 5})
    assert out[1] == "answer to b"
    assert str(out[0]).startswith(f"cannot read image {str(junk)!r}: UnidentifiedImageError: ")
    assert str(out[2]) == (
        f"cannot read image {str(big)!r}: image of 12000 x 10000 = 120,000,000 pixels exceeds the "
        "limit of 100,000,000 pixels (max_pixels); refused before decoding. Raise the limit if the "
        "file is genuine"
    )
    assert len(server.state["bodies"]) == 1  # nothing was sent for the failed two


# -- the up-front check -----------------------------------------------------------------------


def test_check_passes(server, key_env):
    _backend(server, key_env).check()


def test_check_wrong_key(server, monkeypatch):
    monkeypatch.setenv("ANTS_TEST_API_KEY", "sk-wrong-key-XYZ")
    backend = _backend(server, "ANTS_TEST_API_KEY")
    with pytest.raises(
        BackendError,
        match=r"rejected the API key \(HTTP 401\); check the environment variable 'ANTS_TEST_API_KEY'",
    ) as err:
        backend.check()
    assert "sk-wrong-key-XYZ" not in str(err.value)


def test_check_unknown_model_in_the_listing(server, key_env):
    with pytest.raises(
        BackendError,
        match=r"model 'no-such-model' is not served by http://127.0.0.1:\d+/v1; it serves: served-model",
    ):
        _backend(server, key_env, model="no-such-model").check()


def test_check_unknown_model_without_a_listing(server, key_env):
    server.state["models"] = None  # /models answers 404: the model is probed with one request
    server.state["key"] = None
    with pytest.raises(BackendError, match=r"model 'no-such-model' is unknown to .*\(HTTP 404\)"):
        _backend(server, key_env, model="no-such-model").check()
    _backend(server, key_env).check()  # a served model passes the probe
    assert [b["max_tokens"] for b in server.state["bodies"]] == [1]


def test_check_unreachable_server():
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m", **FAST)  # port 9: nothing listens
    with pytest.raises(
        BackendError, match=r"cannot reach the MLLM server at http://127.0.0.1:9/v1"
    ):
        backend.check()


def test_check_runs_before_any_answering(server, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTS_TEST_API_KEY", "sk-wrong")
    answerer = CachedAnswerer(
        _backend(server, "ANTS_TEST_API_KEY"), AnswerCache(tmp_path / "c.sqlite")
    )
    with pytest.raises(BackendError, match="rejected the API key"):
        answerer([Query("vsnl", "tench")])
    assert server.state["bodies"] == []  # no completion was requested


# -- the key never lands on disk --------------------------------------------------------------


def test_api_key_absent_from_records_and_cache(server, key_env, tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    cache = AnswerCache(tmp_path / "answers.sqlite")
    answerer = CachedAnswerer(_backend(server, key_env), cache, Prompting("qwen2vl"), batch_size=2)
    queries = [
        Query("ens", "tench", image=str(path)),
        Query("vsnl", "tench"),
        Query("vsnl", "carp"),
    ]
    answers = answerer(queries)
    assert [a.status for a in answers] == ["ok", "unparsable", "unparsable"]
    df = answer_records(queries, answers, stream_id="s", batch_index=1)
    log = write_answer_log(tmp_path / "answers.parquet", df)
    cache.close()
    secret = KEY.encode()
    assert secret not in df.to_csv().encode()
    assert secret not in log.read_bytes()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("answers.sqlite")]
    assert files and all(secret not in p.read_bytes() for p in files)
    assert server.state["auth"][-1] == f"Bearer {KEY}"  # it was used, though


# -- rate limits, back-off and the total timeout ----------------------------------------------


def test_429_retry_after_seconds_is_honoured(server, key_env):
    backend = _backend(server, key_env, backoff_s=0.01)  # the back-off alone would be ~10 ms
    out = _ask(backend, ["limited"])
    assert out == ["answer to [limited] q0"]
    first, second = server.state["times"]["limited"]
    assert 0.95 <= second - first < 3.0  # waited the asked second, not the 10 ms back-off


def test_503_retry_after_http_date_is_honoured(server, key_env):
    out = _ask(_backend(server, key_env, backoff_s=0.01), ["busydate"])
    assert out == ["answer to [busydate] q0"]
    first, second = server.state["times"]["busydate"]
    # the date is 2 s ahead at a 1 s resolution: between 1 and 2 s left when it is read
    assert 0.95 <= second - first < 3.5


def test_429_without_retry_after_backs_off(server, key_env):
    out = _ask(_backend(server, key_env, backoff_s=0.01), ["limitednohdr"])
    assert out == ["answer to [limitednohdr] q0"]
    assert server.state["counts"]["limitednohdr"] == 2


def test_retry_after_beyond_the_wait_budget_gives_up_at_once(server, key_env):
    backend = _backend(server, key_env, max_retries=5, max_wait_s=60)
    t0 = time.monotonic()
    (out,) = _ask(backend, ["limitedlong"])
    assert time.monotonic() - t0 < 2.0
    assert isinstance(out, Exception)
    assert str(out) == (
        'HTTP 429: {"error": "rate limited"} (gave up after 1 try: the server asked to retry '
        "after 3600 s, beyond what is left of max_wait_s=60 s)"
    )
    assert server.state["counts"]["limitedlong"] == 1


@pytest.mark.parametrize("tag", ["trickle", "trickleheaders"])
def test_timeout_is_total_not_per_read(server, key_env, tag):
    # one byte every 0.3 s: a per-read timeout of 1.5 s would never fire (the body alone
    # would take ~20 s); the total deadline cuts it at 1.5 s
    backend = _backend(server, key_env, timeout_s=1.5, max_retries=0)
    t0 = time.monotonic()
    (out,) = _ask(backend, [tag])
    elapsed = time.monotonic() - t0
    assert isinstance(out, Exception)
    assert "timed out after 1.5 s" in str(out) and "gave up after 1 try" in str(out)
    assert 1.4 <= elapsed < 1.5 + 1.0


def test_models_answer_but_every_chat_request_times_out(server, key_env):
    backend = _backend(server, key_env, timeout_s=0.3, max_retries=1, concurrency=4)
    backend.check()  # /models answers
    out = _ask(backend, ["slow"] * 4)
    assert all(isinstance(o, Exception) for o in out)
    assert all("timed out after 0.3 s" in str(o) and "gave up after 2 tries" in str(o) for o in out)


def test_backoff_delay_formula_and_jitter():
    assert [backoff_delay(k, 1.0, 60.0) for k in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert backoff_delay(5000, 1.0, 60.0) == 60.0  # no float overflow
    a = backoff_schedule(8, 1.0, 60.0, random.Random(1))
    b = backoff_schedule(8, 1.0, 60.0, random.Random(2))
    assert a != b  # the jitter differs between two sequences
    assert a == backoff_schedule(8, 1.0, 60.0, random.Random(1))  # seeded: reproducible
    for seq in (a, b):
        for k, delay in enumerate(seq):
            d = min(2.0**k, 60.0)
            assert d / 2 <= delay <= d
    with pytest.raises(ValueError, match="expected retry >= 0"):
        backoff_delay(-1, 1.0, 60.0)


def test_backends_jitter_differs_unless_seeded():
    def schedule(backend):
        return [backend.retry_delay(k) for k in range(8)]

    url = "http://127.0.0.1:9/v1"
    assert schedule(OpenAIBackend(url, "m")) != schedule(OpenAIBackend(url, "m"))  # OS-seeded
    assert schedule(OpenAIBackend(url, "m", jitter_seed=3)) == schedule(
        OpenAIBackend(url, "m", jitter_seed=3)
    )
    backend = OpenAIBackend(url, "m", backoff_s=0.01)
    assert backend.retry_delay(0, retry_after=1.0) == 1.0  # Retry-After wins when longer
    assert 2.56 <= backend.retry_delay(9, retry_after=0.0) <= 5.12  # else 0.01 * 2**9, jittered


def test_default_schedule_outlasts_a_one_minute_rate_limit():
    # computed, not slept: the least the default back-off can add up to, whatever the jitter
    assert (DEFAULT_MAX_RETRIES, DEFAULT_BACKOFF_S, DEFAULT_MAX_BACKOFF_S) == (8, 1.0, 60.0)
    assert DEFAULT_MAX_WAIT_S == 300.0
    least, most = backoff_bounds()
    assert (least, most) == (
        (1 + 2 + 4 + 8 + 16 + 32 + 60 + 60) / 2,
        1 + 2 + 4 + 8 + 16 + 32 + 60 + 60,
    )
    assert least > 60
    draws = [sum(backoff_schedule(rng=random.Random(s))) for s in range(50)]
    assert all(least <= t <= most for t in draws) and min(draws) > 60
    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m")  # the defaults the backend uses
    assert (backend.max_retries, backend.backoff_s, backend.max_backoff_s, backend.max_wait_s) == (
        8, 1.0, 60.0, 300.0,
    )  # fmt: skip
    assert sum(backend.retry_delay(k) for k in range(backend.max_retries)) > 60


def test_the_retries_sleep_the_schedule(server, key_env):
    backend = _backend(server, key_env, max_retries=3, backoff_s=2.0, jitter_seed=7)
    slept = []
    backend._sleep = slept.append
    (out,) = _ask(backend, ["down"])
    assert "gave up after 4 tries" in str(out)
    assert slept == backoff_schedule(3, 2.0, 60.0, random.Random(7))


def test_the_wait_budget_caps_the_back_off(server, key_env):
    backend = _backend(server, key_env, max_retries=8, backoff_s=1.0, max_wait_s=5.0)
    slept = []
    backend._sleep = slept.append
    (out,) = _ask(backend, ["down"])
    assert sum(slept) <= 5.0 and len(slept) in (2, 3)  # 1+2 fit; the 3rd fits if jitter allows
    assert "beyond what is left of max_wait_s=5 s" in str(out)
    assert server.state["counts"]["down"] == len(slept) + 1


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1", 1.0),
        (" 120 ", 120.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value, seconds):
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now=now) == seconds


def test_config_defaults_and_bad_values():
    backend = from_config({"base_url": "http://127.0.0.1:9/v1", "model": "m"})
    assert (backend.timeout_s, backend.max_retries, backend.max_wait_s) == (120.0, 8, 300.0)
    backend = from_config(
        {"base_url": "http://h:1/v1", "model": "m", "max_backoff_s": 5, "max_wait_s": 10}
    )
    assert (backend.max_backoff_s, backend.max_wait_s) == (5.0, 10.0)
    with pytest.raises(ValueError, match=r"^mllm.timeout_s: expected a number, got 'soon'$"):
        from_config({"base_url": "http://h:1/v1", "model": "m", "timeout_s": "soon"})
    with pytest.raises(ValueError, match=r"max_wait_s >= 0; got .*max_wait_s=-1"):
        from_config({"base_url": "http://h:1/v1", "model": "m", "max_wait_s": -1})


def test_environment_proxy_is_used_unless_no_proxy(server, key_env, monkeypatch):
    port = server.server_address[1]
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")  # the fake server proxies too
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    backend = OpenAIBackend(
        "http://models.invalid:8000/v1", "served-model", api_key_env=key_env, **FAST
    )
    assert _ask(backend, ["ok"]) == ["answer to [ok] q0"]
    assert server.state["proxied"] == ["http://models.invalid:8000/v1/chat/completions"]
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert _ask(_backend(server, key_env), ["ok"]) == ["answer to [ok] q0"]
    assert len(server.state["proxied"]) == 1  # direct this time
