"""The OpenAI-compatible backend against a scripted local HTTP server (127.0.0.1, random port)."""

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from ants.mllm.answering import CachedAnswerer, answer_records, write_answer_log
from ants.mllm.base import BackendError, Query
from ants.mllm.cache import AnswerCache
from ants.mllm.openai_http import OpenAIBackend
from ants.mllm.prompts import Prompting

KEY = "sk-test-THE-SECRET-0123456789"
SETTINGS = {"max_new_tokens": 20, "blank_image_size": None}
FAST = {"timeout_s": 0.4, "max_retries": 2, "backoff_s": 0.01}


class Handler(BaseHTTPRequestHandler):
    """Behaviour chosen by a tag in the prompt: [ok] [flaky] [down] [slow] [slowonce] [close]
    [closeonce] [badjson] [badjsononce] [nochoices] [wait]."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, code, payload, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorised(self):
        st = self.server.state
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
        if tag == "flaky" and n <= 2 or tag == "down":
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
        elif tag == "forbidden":
            self._send(400, {"error": "bad request"})
        else:
            if tag == "wait":
                time.sleep(0.15)
            self._send(200, ok)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.state = {
        "key": KEY,
        "models": ["served-model"],
        "known": ["served-model"],
        "counts": {},
        "bodies": [],
        "auth": [],
        "lock": threading.Lock(),
        "in_flight": 0,
        "max_in_flight": 0,
    }
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


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
    answers = CachedAnswerer(backend, cache, prompting)(queries)
    assert [a.status for a in answers] == ["failed", "unparsable"]
    assert "HTTP 500" in answers[0].reason and answers[0].raw_text == ""
    assert len(cache) == 1
    CachedAnswerer(backend, cache, prompting)(queries)
    assert server.state["counts"] == {"down": 6, "ok": 1}  # only the failed one is asked again


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
