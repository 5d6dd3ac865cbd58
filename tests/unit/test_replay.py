"""Plan -> answer -> replay gives exactly the online ANTS scores (docs/ARCHITECTURE.md)."""

import hashlib

import numpy as np
import pytest

from ants.methods.ants_tta import run_ants
from ants.mllm.base import Answer, Query
from ants.replay import (
    MissingAnswerError,
    PlanningAnswerer,
    ReplayAnswerer,
    plan_queries,
    replay_scores,
)

D, K, M, N = 16, 5, 40, 240
NAMES = [f"class {i}" for i in range(K)]


def _unit_rows(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _text_vector(text):
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return _unit_rows(np.random.default_rng(seed).standard_normal(D))


class FakeBackend:
    """A synchronous, deterministic 'MLLM': answers depend only on the query."""

    def __init__(self):
        self.calls = 0

    def __call__(self, queries):
        self.calls += 1
        out = []
        for q in queries:
            if q.kind == "ens":
                n = int(q.image.split("-")[1])
                if n % 7 == 0:
                    out.append(Answer(raw_text="", status="failed", reason="timeout"))
                else:
                    out.append(Answer(raw_text=f"thing {n % 23}.", negatives=(f"thing {n % 23}",)))
            else:
                c = NAMES.index(q.class_name)
                out.append(
                    Answer(raw_text="...", negatives=tuple(f"near {c} {j}" for j in range(5)))
                )
        return out


def encode(texts, template):
    return np.stack([_text_vector(template.format(t)) for t in texts])


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    idt = _unit_rows(rng.standard_normal((K, D)))
    neg = _unit_rows(rng.standard_normal((M, D)))
    cls = rng.integers(0, K, N)
    x = _unit_rows(idt[cls] * rng.uniform(0, 2.5, (N, 1)) + rng.standard_normal((N, D)) * 0.5)
    items = [f"img-{i}" for i in range(N)]
    sha = [hashlib.sha256(i.encode()).hexdigest() for i in items]
    return {
        "image_features": x,
        "items": items,
        "id_text_features": idt,
        "negative_features": neg,
        "class_names": NAMES,
        "item_sha256": sha,
        "batch_size": 8,
    }


CONFIGS = {
    "authors_code": {
        "ens_trigger_size": 10,
        "ens_max_updates": 4,
        "vsnl_start": 2,
        "vsnl_interval": 5,
        "near_top_k": 3,
        "group_size": 10,
        "ens_bank_cap": 30,
        "in_score": "ada",
    },
    "paper": {
        "preset": "paper",
        "ens_trigger_size": 10,
        "ens_max_updates": 4,
        "vsnl_start": 1,
        "vsnl_interval": 4,
        "near_delta": 0.4,
        "group_size": 10,
    },
    "activation": {
        "ens_trigger_size": 8,
        "vsnl_start": 3,
        "vsnl_interval": 6,
        "near_top_k": 2,
        "group_size": 10,
        "activation_aware_ens": True,
        "activation_top": 12,
        "in_score": "ada",
    },
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_replay_equals_online_exactly(world, name):
    cfg = CONFIGS[name]
    online = run_ants(**world, encode_text=encode, answerer=FakeBackend(), config=cfg)
    plan = plan_queries(**world, config=cfg)
    assert plan == online.trace.queries
    kinds = {q.kind for _, q in plan}
    assert kinds == {"ens", "vsnl"}, "the stream must exercise both kinds of query"
    assert all(
        q.image_sha256 == world["item_sha256"][int(q.image.split("-")[1])]
        for _, q in plan
        if q.kind == "ens"
    )

    # answer every distinct query at once, in an order unrelated to the stream
    distinct = sorted({q for _, q in plan}, key=repr, reverse=True)
    backend = FakeBackend()
    answers = dict(zip(distinct, backend(distinct), strict=True))
    assert backend.calls == 1
    replayed = replay_scores(**world, encode_text=encode, answers=answers, config=cfg)

    for key in online.variants:
        assert online.variants[key].tobytes() == replayed.variants[key].tobytes(), key
    assert online.scores.tobytes() == replayed.scores.tobytes()
    assert online.predictions.tolist() == replayed.predictions.tolist()
    for field in (
        "threshold",
        "n_candidates",
        "ens_update",
        "vsnl_update",
        "ens_size",
        "vsnl_size",
        "lam",
    ):
        assert getattr(online.trace, field).tobytes() == getattr(replayed.trace, field).tobytes(), (
            field
        )
    assert online.trace.queries == replayed.trace.queries
    assert online.trace.ens_sentences == replayed.trace.ens_sentences
    assert online.trace.vsnl_labels == replayed.trace.vsnl_labels
    # the banks did fill, so the equality above is not the trivial S_nl fallback
    assert online.trace.ens_size.max() > 0 and online.trace.vsnl_size.max() > 0
    assert not np.array_equal(online.variants["far_only"], online.variants["s_nl"])


def test_planning_answers_are_empty_and_need_no_encoder(world):
    planner = PlanningAnswerer()
    got = planner([Query("vsnl", "class 0")])
    assert got == [Answer(raw_text="", status="empty", reason="planning pass: not answered yet")]
    assert planner.queries == [Query("vsnl", "class 0")]
    plan = plan_queries(**world, config=CONFIGS["authors_code"])  # encode_text is never needed
    assert len(plan) > 0


def test_missing_answer_names_the_query(world):
    cfg = CONFIGS["authors_code"]
    plan = plan_queries(**world, config=cfg)
    distinct = list(dict.fromkeys(q for _, q in plan))
    answers = dict(zip(distinct, FakeBackend()(distinct), strict=True))
    dropped = next(q for q in distinct if q.kind == "vsnl")
    del answers[dropped]
    with pytest.raises(
        MissingAnswerError, match=r"no answer for Query\(kind='vsnl', class_name='class \d'"
    ):
        replay_scores(**world, encode_text=encode, answers=answers, config=cfg)
    assert isinstance(MissingAnswerError("x"), LookupError)
    assert ReplayAnswerer({})([]) == []


# values to try for every ANTS switch that is NOT a plan key (docs/ARCHITECTURE.md: the queries
# depend only on the plan keys; everything else changes scores alone)
NON_PLAN_VALUES = {
    "lambda_stats": ["paper", "code"],
    "in_score": ["ada", "near_only"],
    "ens_bank_cap": [3, 10_000],
    "vsnl_labels_per_class": [1, 5],
    "balanced_group_size": [None, 2],
    "balanced_tiling": [1, 3],
    "ens_template": ["{}", "a photo of {}."],
    "vsnl_template": ["The nice {}.", "{}"],
    "activation_aware_ens": [False, True],
    "activation_top": [3, 500],
    "activation_step": [1, 4],
    "activation_gap": [0.2, 0.8],
    "activation_queue": [10, 20_000],
    "fixed_lambda": [None, 0.3],
    "answer_parser": ["lenient", "authors"],
}


def test_switches_outside_the_plan_keys_never_change_the_queries(world):
    from dataclasses import fields

    from ants.methods.ants_tta import AntsConfig
    from ants.views import ANTS_PLAN_KEYS

    switches = {f.name for f in fields(AntsConfig)}
    assert switches - set(ANTS_PLAN_KEYS) == set(NON_PLAN_VALUES), (
        "every ANTS switch must be either a plan key or listed here with values to try"
    )
    base = dict(CONFIGS["authors_code"])
    reference = run_ants(**world, encode_text=encode, answerer=FakeBackend(), config=base).trace.queries
    assert reference
    for name, values in NON_PLAN_VALUES.items():
        for value in values:
            got = run_ants(**world, encode_text=encode, answerer=FakeBackend(),
                           config={**base, name: value}).trace.queries
            assert got == reference, f"{name}={value!r} changed the planned queries"
    # and a plan key does change them (the test can fail)
    changed = run_ants(**world, encode_text=encode, answerer=FakeBackend(),
                       config={**base, "initial_threshold": 0.5}).trace.queries
    assert changed != reference
