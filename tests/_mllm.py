"""A deterministic stand-in for the MLLM, for tests of planning, answering and replay."""

from __future__ import annotations

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
