"""A deterministic stand-in for the MLLM, for tests of planning, answering and replay; a local
HTTP server for the tests of OpenAI-compatible backends (``serving``)."""

from __future__ import annotations

import contextlib
import threading
from http.server import ThreadingHTTPServer

from ants.mllm.base import Answer


class FakeMLLM:
    """Deterministic answers: ENS describes by item, VSNL lists five made-up names."""

    def __init__(self):
        self.calls = 0

    def __call__(self, queries):
        self.calls += 1
        out = []
        for q in queries:
            if q.kind == "ens":
                word = q.image.rsplit("/", 1)[-1].split(".")[0]
                out.append(Answer(raw_text=f"a blue object number {word}", negatives=(f"a blue object number {word}",)))
            else:
                names = tuple(f"{q.class_name} cousin {i}" for i in range(5))
                out.append(Answer(raw_text="\n".join(f"{i + 1}. {n}" for i, n in enumerate(names)), negatives=names))
        return out


@contextlib.contextmanager
def serving(handler, state: dict):
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) with ``handler`` and ``server.state``,
    served from a thread, shut down on exit."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    srv.state = state
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)
