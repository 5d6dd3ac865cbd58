"""ANTS's ablation switches (paper Table 4, Fig. 7a; docs/METHOD.md section 11): nim, sim,
initial_detector, and the ablation rows A-F differing exactly as their switches say."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from ants.methods.ants_switches import ANTS_PLAN_KEYS, ants_static_scoring
from ants.methods.ants_tta import ants_static_scores, run_ants
from ants.scores import mcm_parts, negative_label_parts
from ants.views import parse_scoring_name, scoring_name

D, K, M, N = 16, 6, 60, 320
NAMES = [f"class {i}" for i in range(K)]


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _text(text):
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return _unit(np.random.default_rng(seed).standard_normal(D))


def encode(texts, template):
    return np.stack([_text(template.format(t)) for t in texts])


class Answers:
    """A deterministic answerer: answers depend only on the query."""

    def __call__(self, queries):
        from ants.mllm.base import Answer

        out = []
        for q in queries:
            if q.kind == "ens":
                n = int(q.image.split("-")[1])
                out.append(Answer(raw_text=f"thing {n % 17}", negatives=(f"thing {n % 17}",)))
            else:
                c = NAMES.index(q.class_name)
                out.append(Answer(raw_text="", negatives=tuple(f"near {c} {j}" for j in range(5))))
        return out


@pytest.fixture(scope="module")
def world():
    """ID images on their class (cosine logits of 35-60 after tau = 0.01, as real CLIP), OOD
    images near the negatives."""
    rng = np.random.default_rng(3)
    idt = _unit(rng.standard_normal((K, D)))
    neg = _unit(rng.standard_normal((M, D)))
    n_id = N // 2
    cls = rng.integers(0, K, n_id)
    x_id = _unit(idt[cls] * 1.6 + rng.standard_normal((n_id, D)) * 0.35)
    x_ood = _unit(
        neg[rng.integers(0, M, N - n_id)] * 1.2 + rng.standard_normal((N - n_id, D)) * 0.5
    )
    order = rng.permutation(N)
    x = np.concatenate([x_id, x_ood])[order]
    items = [f"img-{i}" for i in range(N)]
    return {
        "image_features": x,
        "items": items,
        "id_text_features": idt,
        "negative_features": neg,
        "class_names": NAMES,
        "batch_size": 16,
        "is_ood": (order >= n_id),
    }


def _run(world, **config):
    base = {
        "preset": "paper",
        "ens_trigger_size": 12,
        "ens_max_updates": 4,
        "vsnl_start": 2,
        "vsnl_interval": 3,
        "near_delta": 0.34,
        "group_size": 10,
        "initial_threshold": 0.9,
    }
    args = {k: v for k, v in world.items() if k != "is_ood"}
    return run_ants(**args, encode_text=encode, answerer=Answers(), config={**base, **config})


def test_the_world_is_as_confident_as_clip(world):
    logits = world["image_features"] @ world["id_text_features"].T / 0.01
    top = logits.max(axis=1)[~world["is_ood"]]
    assert 35 <= np.median(top) <= 100


# -- each new switch decides the queries: it is a plan key, and changing it changes them ------


@pytest.mark.parametrize(
    ("switch", "value"), [("nim", False), ("sim", False), ("initial_detector", "mcm")]
)
def test_each_ablation_switch_is_a_plan_key_and_changes_the_queries(world, switch, value):
    assert switch in ANTS_PLAN_KEYS
    reference = _run(world).trace.queries
    changed = _run(world, **{switch: value}).trace.queries
    assert reference and changed != reference


def test_without_nim_the_threshold_never_moves_and_every_image_below_it_is_described(world):
    on = _run(world)
    off = _run(world, nim=False)
    assert (off.trace.threshold == 0.9).all()  # the initial threshold, never updated
    assert len(set(on.trace.threshold.tolist())) > 1  # with NIM it adapts
    # every ENS update described exactly the images cached since the last one: S_nl < 0.9
    s_nl = off.variants["s_nl"]
    ens = [q for _, q in off.trace.queries if q.kind == "ens"]
    asked = {int(q.image.split("-")[1]) for q in ens}
    last_update = int(off.trace.batch[off.trace.ens_update][-1])
    seen = last_update * world["batch_size"]
    expected = {i for i in range(seen) if s_nl[i] < 0.9}
    assert asked == expected
    assert len(ens) > len([q for _, q in on.trace.queries if q.kind == "ens"])


def test_without_sim_vsnl_asks_for_every_id_class(world):
    on = _run(world)
    off = _run(world, sim=False)
    first = int(off.trace.batch[off.trace.vsnl_update][0])
    off_first = [q.class_name for b, q in off.trace.queries if q.kind == "vsnl" and b == first]
    on_first = [q.class_name for b, q in on.trace.queries if q.kind == "vsnl" and b == first]
    assert sorted(off_first) == sorted(NAMES)  # all K classes
    assert len(on_first) == max(1, round(0.34 * K)) < K  # the SIM subset
    assert off.trace.vsnl_size.max() == 5 * K


def test_mcm_as_the_initial_detector_by_a_direct_formula(world):
    img, idt = world["image_features"], world["id_text_features"]
    parts = mcm_parts(img, idt, tau=0.01)
    for i in range(0, N, 37):  # a direct loop over the ID logits
        logits = [float(img[i] @ idt[k]) / 0.01 for k in range(K)]
        top = max(logits)
        lse = top + math.log(sum(math.exp(v - top) for v in logits))
        assert parts.scores[i] == pytest.approx(math.exp(top - lse), rel=1e-5)
        assert parts.lse_id[i] == pytest.approx(lse, rel=1e-6)
        assert parts.predictions[i] == int(np.argmax(logits))
    run = _run(world, initial_detector="mcm")
    assert np.array_equal(run.variants["s_nl"], parts.scores)
    static = ants_static_scores(img, idt, None, {"initial_detector": "mcm", "tau": 0.01})
    assert np.array_equal(static.scores, parts.scores)


def test_csp_as_the_initial_detector_scores_against_the_negatives_it_is_given(world):
    img, idt = world["image_features"], world["id_text_features"]
    csp = _unit(np.random.default_rng(9).standard_normal((40, D)))
    got = ants_static_scores(img, idt, csp, {"initial_detector": "csp", "group_size": 10})
    want = negative_label_parts(img, idt, csp, tau=0.01, group_size=10, seed=0, chunk_size=4096)
    assert np.array_equal(got.scores, want.scores)
    with pytest.raises(ValueError, match="initial_detector 'csp' needs negative_features"):
        ants_static_scores(img, idt, None, {"initial_detector": "csp"})


def test_the_static_pass_file_name_says_which_detector():
    for detector, name in (
        ("neglabel", "size100-tau0.01-seed0"),
        ("csp", "csp-size100-tau0.01-seed0"),
        ("mcm", "mcm-tau0.01"),
    ):
        scoring = ants_static_scoring({"config": {"preset": "paper", "initial_detector": detector}})
        assert scoring_name(scoring) == name
        assert parse_scoring_name(name) == scoring
    with pytest.raises(ValueError, match="not a static-pass name"):
        parse_scoring_name("mcm-size100-tau0.01-seed0")


# -- the rows of the ablation table (paper Table 4) on a small world -------------------------

ROWS = {
    "A": {"nim": False, "in_score": "far_only"},
    "B": {"in_score": "far_only"},
    "C": {"sim": False, "in_score": "near_only"},
    "D": {"in_score": "near_only"},
    "E": {"fixed_lambda": 0.5, "in_score": "ada"},
    "F": {"in_score": "ada"},
}


def test_ablation_rows_differ_as_their_switches_say(world):
    from ants.metrics import ood_metrics

    runs = {row: _run(world, **cfg) for row, cfg in ROWS.items()}
    full = runs["F"]
    # B, D, E change no plan key: the same queries as F (they reuse its plan and answers)
    for row in "BDE":
        assert runs[row].trace.queries == full.trace.queries, row
    # A and C switch off NIM / SIM: other queries
    assert runs["A"].trace.queries != full.trace.queries
    assert runs["C"].trace.queries != full.trace.queries
    # one score alone: ENS only (B) is F's S_ens; VSNL only (D) is F's S_vsnl
    assert np.array_equal(runs["B"].scores, full.variants["far_only"])
    assert np.array_equal(runs["D"].scores, full.variants["near_only"])
    # the fixed weight (E): lambda = 0.5 at every batch; F's adapts
    assert (runs["E"].trace.lam == 0.5).all()
    assert len(set(np.round(full.trace.lam, 6))) > 1
    np.testing.assert_allclose(
        runs["E"].scores,
        0.5 * full.variants["far_only"] + 0.5 * full.variants["near_only"],
        rtol=1e-6,
    )
    # and the rows' metrics differ from each other (they are six different detectors)
    is_ood = world["is_ood"]
    aurocs = {
        row: ood_metrics(r.scores[~is_ood], r.scores[is_ood])["auroc"] for row, r in runs.items()
    }
    assert len({round(v, 9) for v in aurocs.values()}) == len(ROWS), aurocs
