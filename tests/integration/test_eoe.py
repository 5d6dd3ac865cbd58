"""EOE: the score against a direct formula, the envisioned labels' rules, the prompts and turns,
answer parsing, and the stages (text-only questions through the answer cache, the answers log,
the labels' text features) end to end on the tiny CLIP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ants.methods.eoe import (
    envision,
    envision_plan,
    envisioned_labels,
    eoe_scores,
    far_prompt,
    near_prompt,
    run_eoe,
)
from ants.mllm.base import Answer, Query
from ants.mllm.parsing import parse_eoe_answer


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("temperature", [1.0, 0.01])
def test_eoe_score_by_a_direct_formula(temperature):
    """S = max_ID p - beta max_env p, one softmax over ID and envisioned labels at T; T = 1 (their
    code) and T = 0.01 (logits of 35-60, as confident as real CLIP)."""
    rng = np.random.default_rng(2)
    k, m, d, n = 6, 9, 32, 8
    idt = _unit(rng.standard_normal((k, d)))
    env = _unit(rng.standard_normal((m, d)))
    x = _unit(
        np.concatenate([idt[rng.integers(0, k, n // 2)] * 2, env[rng.integers(0, m, n // 2)] * 2])
        + rng.standard_normal((n, d)) * 0.3
    )
    got = run_eoe(
        image_features=x,
        id_text_features=idt,
        envisioned_features=env,
        beta=0.25,
        temperature=temperature,
    )
    for i in range(n):
        z = [float(x[i] @ t) / temperature for t in np.concatenate([idt, env])]
        top = max(z)
        den = sum(math.exp(v - top) for v in z)
        p = [math.exp(v - top) / den for v in z]
        want = max(p[:k]) - 0.25 * max(p[k:])
        assert got.scores[i] == pytest.approx(want, rel=1e-5, abs=1e-7)
        assert got.variants["p_id"][i] == pytest.approx(max(p[:k]), rel=1e-5, abs=1e-7)
    if temperature == 0.01:  # the confident world: ID images score higher than OOD ones
        assert got.scores[: n // 2].min() > got.scores[n // 2 :].max()
    # no envisioned label left: the score is MCM at T
    s, p_id, p_env = eoe_scores(x, idt, np.zeros((0, d), np.float32), temperature=temperature)
    assert np.array_equal(s, p_id) and not p_env.any()


def test_envisioned_labels_as_their_loader():
    names = ["tench", "great white shark", "Cat"]
    answers = [["Rocky Mountain", "cat", "river", " River "], ["white sand", "Tench", "cloud"]]
    # lower-cased, de-duplicated (first kept), ID names dropped (compared lower-cased)
    assert envisioned_labels(answers, names, "far") == [
        "rocky mountain",
        "river",
        "white sand",
        "cloud",
    ]
    # near: also every label sharing a word with an ID class name ("white")
    assert envisioned_labels(answers, names, "near") == ["rocky mountain", "river", "cloud"]


def test_eoe_answers_parse_like_their_stringtolist_or_leniently():
    raw = "These are:\n- black stone\n- Ginkgo Tree\n-no space\n* star\n1. comet\n- black stone"
    assert parse_eoe_answer(raw, "authors").negatives == ("black stone", "Ginkgo Tree")
    assert parse_eoe_answer(raw, "lenient").negatives == ("black stone", "Ginkgo Tree", "star")
    assert parse_eoe_answer("1. comet\n2) moon: round", "lenient").negatives == ("comet", "moon")
    assert parse_eoe_answer("river, mountain, Ginkgo Tree", "lenient").negatives == (
        "river",
        "mountain",
        "Ginkgo Tree",
    )
    bad = parse_eoe_answer("1. comet", "authors")
    assert bad.status == "unparsable" and "- name" in bad.reason
    assert parse_eoe_answer("   ", "authors").status == "empty"


class Recorder:
    """An answerer that records its calls and answers with a '- ' list of numbered names."""

    def __init__(self):
        self.calls = []

    def __call__(self, queries):
        self.calls.append(list(queries))
        return [
            Answer(
                raw_text="\n".join(f"- thing {len(self.calls)}.{j}" for j in range(3)),
                negatives=tuple(f"thing {len(self.calls)}.{j}" for j in range(3)),
            )
            for _ in queries
        ]


def test_far_turns_carry_the_conversation_and_near_asks_once_per_class():
    names = ["tench", "goldfish"]
    assert envision_plan("far", 500) == (10, 50) and envision_plan("far", 120) == (2, 50)
    assert envision_plan("far", 10) == (1, 10)
    rec = Recorder()
    asked = envision(names, rec, task="far", n_envisioned=100)
    assert [len(c) for c in rec.calls] == [1, 1]  # two turns, one question each, in order
    first, second = (q for q, _ in asked)
    assert first.kind == second.kind == "eoe" and first.prompt == far_prompt(names, 50)
    assert "[['tench', 'goldfish']]" in first.prompt  # the list written as their code writes it
    # the second turn: the first question, its answer, then the follow-up question
    assert second.prompt.startswith(
        first.prompt + "- thing 1.0\n- thing 1.1\n- thing 1.2\n\nQ: Give me 50 more"
    )
    rec = Recorder()
    asked = envision(["hot_dog", "tench"], rec, task="near", n_envisioned=3)
    assert len(rec.calls) == 1 and [q.class_name for q, _ in asked] == ["hot_dog", "tench"]
    assert asked[0][0].prompt == near_prompt("hot_dog", 3)
    assert asked[0][0].prompt.endswith(
        "There are 3 classes similar to [hot dog], and they are from broader "
        "and different domains than [hot dog]:\n"
    )
    with pytest.raises(ValueError, match="fine_grained task needs class_type"):
        envision(names, Recorder(), task="fine_grained", n_envisioned=10)
    with pytest.raises(ValueError, match="unknown EOE task 'mid'"):
        envision(names, Recorder(), task="mid")


def test_an_eoe_query_carries_its_prompt_and_is_cached_by_it(tmp_path):
    """Text-only EOE questions go through the ANTS answerer: their own prompt, the eoe
    generation settings (no image), their own cache keys; a second run asks nothing."""
    from ants.mllm.answering import CachedAnswerer
    from ants.mllm.cache import AnswerCache

    with pytest.raises(ValueError, match="carries its own prompt"):
        Query("eoe", "tench")
    with pytest.raises(ValueError, match="carries its own prompt"):
        Query("vsnl", "tench", prompt="hi")

    class Backend:
        def __init__(self):
            self.seen = []

        def identity(self):
            return {"backend": "fake", "model_id": "llm", "revision": "1", "settings": {}}

        def check(self):
            pass

        def generate(self, queries, prompts, settings):
            self.seen.append((list(prompts), dict(settings)))
            return ["- comet\n- nebula" for _ in queries]

    backend = Backend()
    answerer = CachedAnswerer(backend, AnswerCache(tmp_path / "c.sqlite"), parse_style="authors")
    queries = [Query("eoe", "", prompt="Q: one?\nA:\n"), Query("eoe", "", prompt="Q: two?\nA:\n")]
    got = answerer(queries)
    assert [a.negatives for a in got] == [("comet", "nebula")] * 2
    ((prompts, settings),) = backend.seen
    assert prompts == ["Q: one?\nA:\n", "Q: two?\nA:\n"]
    assert settings == {"max_new_tokens": 1024, "blank_image_size": None}  # text only
    again = CachedAnswerer(Backend(), AnswerCache(tmp_path / "c.sqlite"), parse_style="authors")
    assert [a.negatives for a in again(queries)] == [a.negatives for a in got]
    assert again.stats["hits"] == 2 and again.stats["generated"] == 0
    vsnl = answerer.prepare(Query("vsnl", ""))[3]
    assert vsnl not in {a.cache_key for a in got}


def test_the_eoe_stages_end_to_end(tmp_path, image_files):
    """envision (a fake LLM) -> answers log -> envisioned labels' text features -> score, with
    the tiny CLIP; the log is an ordinary answers log (ants answers reads it)."""
    from ants import stages
    from ants.answers_log import read_answer_log
    from ants.artifacts import read_parquet
    from ants.embeddings import read_embeddings

    names = tmp_path / "names.txt"
    names.write_text("tench\ngoldfish\n")
    method = {
        "method": "eoe",
        "task": "far",
        "n_envisioned": 100,
        "beta": 0.25,
        "temperature": 1.0,
        "parser": "authors",
    }
    answer_cfg = {"mllm": {}, "answering": {"max_failed_fraction": 0, "max_negative_chars": None}}
    log = tmp_path / "eoe.parquet"
    stats = stages.envision(
        {"file": str(names)},
        method,
        answer_cfg,
        cache=tmp_path / "c.sqlite",
        out=log,
        stream_name="eoe/toy/eoe",
        answerer=Recorder(),
        progress=False,
    )
    frame = read_answer_log(log)
    assert (
        len(frame) == 2
        and set(frame["kind"]) == {"eoe"}
        and (frame["stream_id"] == "eoe/toy/eoe").all()
    )
    assert frame["batch_index"].tolist() == [1, 2]
    assert isinstance(stats, dict)
    backbone = {"model": "tiny", "seed": 0}
    encoding = {
        "device": "cpu",
        "precision": "fp32",
        "image_batch_size": 4,
        "text_batch_size": 64,
        "num_workers": 0,
    }
    out = tmp_path / "env.parquet"
    info = stages.encode_envisioned(
        log, {"file": str(names)}, method, backbone, encoding, store=tmp_path / "tf.sqlite", out=out
    )
    feats, rows, _ = read_embeddings(out, "envisioned_text")
    assert info["n_texts"] == 6 and rows["template"].unique().tolist() == ["a photo of a {}"]
    assert rows["text"].tolist() == [f"thing {t}.{j}" for t in (1, 2) for j in range(3)]
    frame, _ = read_parquet(out, "envisioned_text")
    assert len(frame) == 6 and feats.shape == (6, 64)
