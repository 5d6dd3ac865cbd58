"""ANTS state machine on tiny streams checked by hand (docs/METHOD.md sections 6, 7, 10)."""

from collections import Counter

import numpy as np
import pytest
import torch

from ants.methods import run_method
from ants.methods.ants_tta import (
    PRESETS,
    AntsConfig,
    activation_selected_score,
    activation_threshold,
    adaptive_weight,
    ants_config,
    prepend_keep_last,
    run_ants,
    threshold_code_rule,
    threshold_paper_rule,
    top_predicted,
)
from ants.mllm.base import Answer, Query
from ants.mllm.parsing import normalise_sentences, parse_answer
from ants.scores import negative_label, predict

# ---------------------------------------------------------------------------------------------
# pure pieces


def test_code_threshold_rule_by_hand():
    # bins [0,.1): 1, [.1,.2): 2, [.9,1]: 4 -> diffs 1,-2,0..0,4 -> jump after bin 8 -> upper 0.9
    hist = [0.0625, 0.125, 0.1875, 0.9375, 0.9375, 0.9375, 0.9375]
    thr, upper = threshold_code_rule(hist, 0.5)
    assert upper == pytest.approx(0.9)
    assert thr == 0.125  # median of the three values below 0.9
    thr, _ = threshold_code_rule(hist, 0.25)
    assert thr == 0.09375  # linear: 0.0625 + 0.5 * (0.125 - 0.0625)


def test_code_threshold_rule_first_jump_wins_and_empty_low_side_uses_all():
    # counts [2, 0, ..., 0, 2]: |diff| is 2 at index 0 and 8 -> the first -> upper = 0.1
    thr, upper = threshold_code_rule([0.03125, 0.0625, 0.96875, 0.9375], 0.5)
    assert upper == pytest.approx(0.1)
    assert thr == pytest.approx(0.046875)
    # everything in the last bin: upper = 0.9, nothing below -> percentile of all values
    thr, upper = threshold_code_rule([0.9375, 0.96875], 0.5)
    assert upper == pytest.approx(0.9)
    assert thr == pytest.approx(0.953125)
    with pytest.raises(ValueError, match="empty S_nl history"):
        threshold_code_rule([], 0.5)


def test_paper_threshold_rule_by_hand():
    scores = [0.5, 0.1, 0.3, 0.2, 0.4]
    assert threshold_paper_rule(scores, 0.5) == 0.3  # ceil(2.5) = 3 lowest: 0.1, 0.2, 0.3
    assert threshold_paper_rule(scores, 0.1) == 0.1  # at least one
    assert threshold_paper_rule(scores, 1.0) == 0.5


def test_prepend_keep_last_drops_the_newest_on_overflow():
    bank = torch.tensor([[1.0], [2.0], [3.0]])
    new = torch.tensor([[8.0], [9.0]])
    out = prepend_keep_last(bank, new, 4)
    assert out[:, 0].tolist() == [9.0, 1.0, 2.0, 3.0]
    assert prepend_keep_last(None, new, 4)[:, 0].tolist() == [8.0, 9.0]
    assert prepend_keep_last(bank, new, 10)[:, 0].tolist() == [8.0, 9.0, 1.0, 2.0, 3.0]


def test_top_predicted_ties_in_first_seen_order():
    counts = Counter([3, 1, 1, 3, 2, 2, 0])
    assert top_predicted(counts, 2) == [3, 1]
    assert top_predicted(counts, 4) == [3, 1, 2, 0]


def test_adaptive_weight_formula_and_zero_denominator():
    assert adaptive_weight(0.2, 0.6) == pytest.approx(0.8 / 1.2)
    assert adaptive_weight(1.0, 1.0) == 0.5
    assert adaptive_weight(1.0, 1.0 - 1e-9) == 0.5  # denominator below float32 eps
    assert adaptive_weight(1.0, 0.9) == pytest.approx(0.0)


def test_activation_threshold_by_hand():
    # t = 0.10 puts every value on the high side (skipped); t = 0.11 separates the clusters
    assert activation_threshold(np.float32([0.1, 0.1, 0.9, 0.9])) == pytest.approx(0.11, abs=1e-6)
    # no t splits a constant queue: the median
    assert activation_threshold([0.995, 0.995]) == pytest.approx(0.995)


def test_activation_selected_score_by_hand():
    lid = torch.tensor([[0.0], [0.0]])
    lse_id = torch.tensor([0.0, 0.0])  # one ID label with logit 0
    lneg = torch.tensor([[3.0, 0.0, 1.0], [-2.0, 1.0, -1.0]])
    ref = torch.tensor([0.1, 0.9])
    # t = 0.5: high > 0.75 (sample 1), low < 0.25 (sample 0)
    out = activation_selected_score(lse_id, lneg, ref, 0.5, gap=0.5, top=2, step=1)
    p = torch.softmax(torch.cat([lid, lneg], 1), 1)[:, 1:]
    rel = p[0] - p[1]
    order = torch.argsort(rel, descending=True)[:2]
    assert order.tolist() == [0, 2]
    expected = []
    for i in range(2):
        e = torch.exp(lneg[i, order])
        expected.append(((1 / (1 + e[0])) + 1 / (1 + e[0] + e[1])) / 2)
    torch.testing.assert_close(out, torch.stack(expected))
    # step 2 with 3 kept: prefixes of length 2 and 3
    out3 = activation_selected_score(lse_id, lneg, ref, 0.5, gap=0.5, top=3, step=2)
    order3 = torch.argsort(rel, descending=True)
    e = torch.exp(lneg[:, order3])
    exp3 = (1 / (1 + e[:, :2].sum(1)) + 1 / (1 + e.sum(1))) / 2
    torch.testing.assert_close(out3, exp3)
    assert activation_selected_score(lse_id, lneg, torch.tensor([0.9, 0.9]), 0.5) is None


# ---------------------------------------------------------------------------------------------
# configuration


def test_presets_and_overrides():
    code = AntsConfig.preset("authors_code")
    paper = AntsConfig.preset("paper")
    assert code == AntsConfig()
    assert (code.initial_threshold, code.threshold_rule, code.near_subset, code.lambda_stats) == (
        0.8,
        "code",
        "top_k",
        "code",
    )
    assert (
        paper.initial_threshold,
        paper.threshold_rule,
        paper.near_subset,
        paper.lambda_stats,
        paper.in_score,
    ) == (0.9, "paper", "top_fraction", "paper", "ada")
    assert (
        code.ens_trigger_size,
        code.ens_bank_cap,
        code.vsnl_start,
        code.vsnl_interval,
        code.group_size,
    ) == (200, 10_000, 10, 40, 100)
    assert ants_config({"preset": "paper", "eta": 0.3}).eta == 0.3
    assert ants_config("paper") == paper
    assert set(PRESETS) == {"paper", "authors_code"}


#: a VSNL answer for the class "leopard" with every line on which the two parsers disagree
VSNL_DISAGREEMENTS = "1. Snow leopard: spotted\n3 - Jaguar\n- 4. lynx\n5) leopard\n6. Ocelot.."


@pytest.mark.parametrize(
    ("preset", "parser", "vsnl", "ens"),
    [
        # the authors' labels.py: "3 - Jaguar" and "- 4. lynx" are not numbered lines, the rest of
        # the line is the label, the queried class stays, EVERY trailing dot goes
        ("authors_code", "authors", ["Snow leopard: spotted", "leopard", "Ocelot"], "Leopard"),
        # lenient: looser numbering kept, explanations cut, the queried class dropped, ONE dot
        ("paper", "lenient", ["Snow leopard", "Jaguar", "lynx", "Ocelot."], None),
    ],
)
def test_each_preset_parses_answers_with_its_parser(preset, parser, vsnl, ens):
    """``authors_code`` parses MLLM answers as the authors' labels.py, ``paper`` leniently;
    checked on the exact strings the two parsers treat differently."""
    cfg = ants_config({"preset": preset})
    assert cfg.answer_parser == parser
    assert AntsConfig.preset(preset).answer_parser == parser
    got = parse_answer("vsnl", VSNL_DISAGREEMENTS, "leopard", style=cfg.answer_parser)
    assert got.status == "ok" and list(got.negatives) == vsnl
    # one-line lists: the authors' rule keeps the whole rest of the line as ONE label
    inline = parse_answer("vsnl", "1. a 2. b 3. c", "leopard", style=cfg.answer_parser)
    assert list(inline.negatives) == (["a 2. b 3. c"] if parser == "authors" else ["a", "b", "c"])
    # an ENS answer that is only the predicted class: a negative for the authors, empty if lenient
    only_class = parse_answer("ens", "Leopard.", "leopard", style=cfg.answer_parser)
    assert (list(only_class.negatives) or [None])[0] == ens
    assert only_class.status == ("ok" if ens else "empty")
    # what the method itself re-normalises (ENS sentences and VSNL labels) follows the preset too
    want = ["Blue sky"] if parser == "authors" else ["Blue sky.", "blue sky"]
    assert normalise_sentences(["Blue sky..", "blue sky"], style=cfg.answer_parser) == want
    # an explicit switch wins over the preset
    other = "lenient" if parser == "authors" else "authors"
    assert ants_config({"preset": preset, "answer_parser": other}).answer_parser == other


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("fast", r"unknown ANTS preset 'fast'; valid presets: authors_code, paper"),
        ({"preset": "nope"}, r"unknown ANTS preset 'nope'"),
        (
            {"threshold_rul": "code"},
            r"unknown ANTS switch\(es\) 'threshold_rul'; valid switches: preset, initial_threshold",
        ),
        (
            {"threshold_rule": "median"},
            r"AntsConfig.threshold_rule: 'median' is not allowed; allowed values: 'code', 'paper'",
        ),
        (
            {"in_score": "sum"},
            r"AntsConfig.in_score: 'sum' is not allowed; allowed values: 'ada', 'far_only', "
            r"'near_only'",
        ),
        ({"near_subset": "all"}, r"allowed values: 'top_k', 'top_fraction'"),
        ({"lambda_stats": "x"}, r"allowed values: 'code', 'paper'"),
        ({"group_size": 0}, r"AntsConfig.group_size: 0 is out of range; expected a value >= 1"),
        ({"eta": 1.5}, r"AntsConfig.eta: 1.5 is out of range; expected a value in \[0, 1\]"),
        ({"vsnl_template": "nice"}, r"AntsConfig.vsnl_template: 'nice' is not allowed; "
                                    r"expected a format string with exactly one '\{\}'"),
        ({"ens_template": "{} and {}"}, r"exactly one '\{\}'"),
        ({"near_top_k": True}, r"AntsConfig.near_top_k: true has the wrong type; expected an integer"),
    ],
)
def test_bad_config_is_a_clear_error(config, message):
    with pytest.raises(ValueError, match=message):
        ants_config(config)


# ---------------------------------------------------------------------------------------------
# tiny hand-made streams
#
# d = 6: ID classes e0, e1, e2; mined negatives e3, e4; e5 is free for generated negatives.


def unit(*v):
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


IDT = np.eye(6, dtype=np.float32)[:3]
NEG = np.eye(6, dtype=np.float32)[3:5]
NAMES = ["cat", "dog", "owl"]


def id_img(c, w=0.2):
    v = np.zeros(6, np.float32)
    v[c] = 1.0
    v[(c + 1) % 3] = w
    return unit(*v)


def ood_img(c, w=0.3):
    v = np.zeros(6, np.float32)
    v[3] = 1.0
    v[c] = w
    return unit(*v)


TEXTS = {
    "a red fox": unit(0.2, 0, 0, 0.9, 0, 0.3),
    "a blue sky": unit(0, 0.1, 0, 0.2, 0.9, 0.2),
    "grass": unit(0.1, 0, 0, 0, 0.3, 1),
    "moss": unit(0, 0, 0.3, 0.5, 0, 1),
    "leopard": unit(0.8, 0, 0, 0, 0, 0.6),
    "cheetah": unit(0.7, 0, 0.2, 0, 0, 0.6),
    "wolf": unit(0, 0.8, 0, 0, 0.2, 0.5),
    "eagle": unit(0, 0, 0.8, 0, 0, 0.6),
}


class Encoder:
    def __init__(self):
        self.calls = []

    def __call__(self, texts, template):
        self.calls.append((list(texts), template))
        return np.stack([TEXTS[t.lower()] for t in texts])


class Oracle:
    """ENS: the item's sentence from a table; VSNL: the class's labels from a table."""

    def __init__(self, ens=None, vsnl=None):
        self.ens = ens or {}
        self.vsnl = vsnl or {}
        self.calls = []

    def __call__(self, queries):
        self.calls.append(list(queries))
        out = []
        for q in queries:
            if q.kind == "ens":
                got = self.ens.get(q.image)
            else:
                got = self.vsnl.get(q.class_name)
            if got is None:
                out.append(Answer(raw_text="", status="failed", reason="no answer"))
            else:
                out.append(Answer(raw_text=str(got), negatives=tuple(got)))
        return out


def run_tiny(feats, cfg, oracle, encoder=None, batch_size=2, **kw):
    items = [f"img{i}" for i in range(len(feats))]
    return run_ants(
        image_features=np.stack(feats),
        items=items,
        id_text_features=IDT,
        negative_features=NEG,
        class_names=NAMES,
        encode_text=encoder or Encoder(),
        answerer=oracle,
        config=cfg,
        batch_size=batch_size,
        **kw,
    )


def plain(x, negs):
    return negative_label(np.atleast_2d(x), IDT, np.stack(negs))


ENS_STREAM = [
    ood_img(0),
    id_img(0),
    ood_img(1),
    id_img(1),
    id_img(2),
    ood_img(2),
    id_img(0),
    ood_img(0),
]
ENS_CFG = {"ens_trigger_size": 1, "ens_max_updates": 1, "vsnl_start": 100}


def test_s_nl_and_predictions_match_the_static_scores():
    feats = np.stack(ENS_STREAM)
    r = run_tiny(ENS_STREAM, ENS_CFG, Oracle())
    np.testing.assert_allclose(
        r.variants["s_nl"], negative_label(feats, IDT, NEG, group_size=100), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_array_equal(r.predictions, predict(feats, IDT))


def test_ens_update_by_the_code_rule_applies_to_its_own_batch():
    enc = Encoder()
    oracle = Oracle(ens={"img0": ["a red fox"], "img2": ["A red fox"], "img5": ["grass"]})
    r = run_tiny(ENS_STREAM, ENS_CFG, oracle, enc)
    s = r.variants["s_nl"]
    tr = r.trace
    # batch 1 caches img0 (1 candidate, not > 1); batch 2 caches img2 -> 2 > 1 -> update
    assert tr.ens_update.tolist() == [False, True, False, False]
    assert tr.n_candidates.tolist() == [1, 0, 0, 0]
    # history of 4: two ~0, two ~1 -> counts [2, 0.., 2]; first largest jump -> upper 0.1
    expected_thr = float(np.percentile(np.float32([s[0], s[2]]), 50))
    assert tr.threshold.tolist() == [0.8, 0.8, expected_thr, expected_thr]
    # one answerer call with both cached images, in cache order, naming their predicted class
    assert oracle.calls == [
        [
            Query(kind="ens", class_name="cat", image="img0"),
            Query(kind="ens", class_name="dog", image="img2"),
        ]
    ]
    assert tr.queries == [(2, q) for q in oracle.calls[0]]
    # the two answers are one sentence up to case (the first spelling kept), encoded WITHOUT a
    # template
    assert enc.calls == [(["a red fox"], "{}")]
    assert tr.ens_sentences == ["a red fox"]
    assert tr.ens_size.tolist() == [0, 1, 1, 1]
    # batch 1 (empty bank): S_ens falls back to S_nl; batch 2 on: the plain score vs the bank
    far = r.variants["far_only"]
    assert far[:2].tolist() == s[:2].tolist()
    np.testing.assert_allclose(
        far[2:], plain(np.stack(ENS_STREAM[2:]), [TEXTS["a red fox"]]), rtol=1e-6, atol=1e-6
    )
    # E = 1: caching stops after the update, so img5 is never asked about
    assert all(q.image != "img5" for _, q in tr.queries)
    # no VSNL event: near_only is S_nl throughout
    assert r.variants["near_only"].tolist() == s.tolist()


@pytest.mark.parametrize("preset", ["authors_code", "paper"])
def test_ens_sentences_are_normalised_once_as_the_authors(preset):
    """Issue 14: the authors normalise an update's raw ENS answers once (strip, strip every
    trailing dot, collapse whitespace, de-duplicate case-insensitively); the bank and the encoder
    get exactly those sentences, never a second cleaning of the parsed ones."""
    raw = {"img0": "A red fox. .", "img2": "a RED fox.  ."}
    texts = {"a red fox.": TEXTS["a red fox"], "a red fox": TEXTS["a red fox"]}
    cfg = ants_config({**ENS_CFG, "preset": preset})

    def answerer(queries):
        return [
            parse_answer(q.kind, raw[q.image], q.class_name, style=cfg.answer_parser)
            for q in queries
        ]

    calls = []

    def encode(batch, template):
        calls.append(list(batch))
        return np.stack([texts[t.lower()] for t in batch])

    r = run_tiny(ENS_STREAM, {**ENS_CFG, "preset": preset}, answerer, encode)
    # cleaned once, "A red fox. ." is "A red fox." in both styles (a second cleaning would give
    # "A red fox"); the second answer is the same sentence up to case: the first spelling stays
    assert calls == [["A red fox."]]
    assert r.trace.ens_sentences == ["A red fox."]
    # what the parser gave and what the update encoded are the same strings
    assert [
        parse_answer("ens", raw[i], "cat", style=cfg.answer_parser).negatives[0]
        for i in ("img0", "img2")
    ] == ["A red fox.", "a RED fox."]


def test_paper_threshold_rule_in_a_run():
    cfg = {**ENS_CFG, "threshold_rule": "paper", "eta": 0.5, "initial_threshold": 0.9}
    r = run_tiny(ENS_STREAM, cfg, Oracle())
    s = r.variants["s_nl"]
    cached = sorted(float(v) for v in s[:4] if v < 0.9)  # the two OOD samples of batches 1-2
    assert len(cached) == 2
    assert r.trace.threshold[2] == cached[0]  # ceil(0.5 * 2) = 1 lowest -> the smallest
    # all answers failed: the update counted, the bank stayed empty, S_ens = S_nl
    assert r.trace.ens_update.tolist() == [False, True, False, False]
    assert r.trace.ens_size.tolist() == [0, 0, 0, 0]
    assert r.variants["far_only"].tolist() == s.tolist()


def test_ens_bank_overflow_prepends_and_keeps_the_last_rows():
    # the later OOD images are farther from the ID classes (lower S_nl) so they pass the new threshold
    stream = [
        ood_img(0),
        ood_img(1),
        id_img(0),
        id_img(1),
        ood_img(2, 0.1),
        ood_img(0, 0.1),
        id_img(2),
        id_img(0),
    ]
    oracle = Oracle(
        ens={"img0": ["a red fox"], "img1": ["a blue sky"], "img4": ["grass"], "img5": ["moss"]}
    )
    cfg = {
        "ens_trigger_size": 1,
        "ens_max_updates": 2,
        "ens_bank_cap": 3,
        "vsnl_start": 100,
        "initial_threshold": 0.5,
        "threshold_rule": "paper",
        "eta": 1.0,
    }
    r = run_tiny(stream, cfg, oracle)
    tr = r.trace
    assert tr.ens_update.tolist() == [True, False, True, False]
    # update 1: [fox, sky]; update 2: new [grass, moss] -> [grass, moss, fox, sky][-3:]
    assert tr.ens_sentences == ["moss", "a red fox", "a blue sky"]
    assert tr.ens_size.tolist() == [2, 2, 3, 3]
    bank = [TEXTS[t] for t in tr.ens_sentences]
    np.testing.assert_allclose(
        r.variants["far_only"][4:], plain(np.stack(stream[4:]), bank), rtol=1e-6, atol=1e-6
    )
    # caching stopped after E = 2 updates
    assert tr.n_candidates.tolist() == [0, 0, 0, 0]


VSNL_STREAM = [
    id_img(2),
    id_img(0),
    id_img(0),
    id_img(2),
    id_img(1),
    id_img(1),
    id_img(1),
    id_img(1),
    id_img(2),
    id_img(2),
    id_img(2),
    id_img(2),
]
VSNL_ANSWERS = {
    "owl": ["1. eagle", "leopard", "Leopard", "wolf", "cheetah", "moss", "grass"],
    "cat": ["leopard", "cheetah"],
    "dog": ["wolf"],
}


def test_vsnl_events_top_k_ties_and_re_asking():
    # answers are already parsed lists; "1. eagle" is kept verbatim by the method
    answers = {k: [v.replace("1. ", "") for v in vals] for k, vals in VSNL_ANSWERS.items()}
    oracle = Oracle(vsnl=answers)
    enc = Encoder()
    cfg = {"vsnl_start": 2, "vsnl_interval": 2, "near_top_k": 1, "ens_max_updates": 0}
    r = run_tiny(VSNL_STREAM, cfg, oracle, enc)
    tr = r.trace
    assert r.predictions.tolist() == [2, 0, 0, 2, 1, 1, 1, 1, 2, 2, 2, 2]
    # b2: counts owl 2, cat 2 (owl seen first) -> owl; b4: dog 4 -> dog (owl dropped);
    # b6: owl 6 > dog 4 -> owl again (asked again: it had left the cache)
    assert tr.vsnl_update.tolist() == [False, True, False, True, False, True]
    assert tr.queries == [
        (2, Query("vsnl", "owl")),
        (4, Query("vsnl", "dog")),
        (6, Query("vsnl", "owl")),
    ]
    # at most 5 labels per class, de-duplicated case-insensitively; encoded with the template
    owl = ["eagle", "leopard", "wolf", "cheetah", "moss"]
    assert enc.calls == [(owl, "The nice {}."), (["wolf"], "The nice {}."), (owl, "The nice {}.")]
    assert tr.vsnl_size.tolist() == [0, 5, 5, 1, 1, 5]
    assert tr.vsnl_labels == owl
    near = r.variants["near_only"]
    np.testing.assert_allclose(
        near[2:6], plain(np.stack(VSNL_STREAM[2:6]), [TEXTS[t] for t in owl]), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        near[6:10], plain(np.stack(VSNL_STREAM[6:10]), [TEXTS["wolf"]]), rtol=1e-6, atol=1e-6
    )
    assert near[:2].tolist() == r.variants["s_nl"][:2].tolist()


def test_vsnl_top_two_asks_new_classes_in_one_call_and_keeps_failed_ones_cached():
    oracle = Oracle(vsnl={"owl": ["eagle", "Leopard"], "cat": ["leopard", "cheetah"]})  # dog: fails
    cfg = {"vsnl_start": 2, "vsnl_interval": 2, "near_top_k": 2, "ens_max_updates": 0}
    r = run_tiny(VSNL_STREAM, cfg, oracle)
    # b2: owl, cat (tie, first seen); b4: dog 4, owl 2 (cat dropped) -> dog new;
    # b6: owl 6, dog 4 -> nothing new: dog's failed answer still counts as cached
    assert [len(c) for c in oracle.calls] == [2, 1]
    assert r.trace.queries == [
        (2, Query("vsnl", "owl")),
        (2, Query("vsnl", "cat")),
        (4, Query("vsnl", "dog")),
    ]
    assert r.trace.vsnl_labels == ["eagle", "Leopard"]  # dog contributes nothing
    assert r.trace.vsnl_size.tolist() == [0, 3, 3, 2, 2, 2]  # b2: eagle, Leopard, cheetah


def test_top_fraction_subset_size():
    oracle = Oracle(vsnl={"owl": ["eagle"], "cat": ["leopard"]})
    cfg = {
        "vsnl_start": 2,
        "vsnl_interval": 100,
        "near_subset": "top_fraction",
        "near_delta": 0.5,
        "ens_max_updates": 0,
    }
    r = run_tiny(VSNL_STREAM, cfg, oracle)
    # round(0.5 * 3) = 2 classes
    assert r.trace.queries == [(2, Query("vsnl", "owl")), (2, Query("vsnl", "cat"))]


MIXED_STREAM = [
    ood_img(0),
    id_img(2),
    ood_img(1),
    id_img(2),
    id_img(0),
    ood_img(2),
    id_img(1),
    id_img(2),
]
MIXED_ORACLE = {
    "ens": {"img0": ["a red fox"], "img2": ["a blue sky"], "img5": ["grass"]},
    "vsnl": {"owl": ["eagle", "moss"], "cat": ["leopard"]},
}
MIXED_CFG = {
    "ens_trigger_size": 1,
    "ens_max_updates": 1,
    "vsnl_start": 2,
    "vsnl_interval": 100,
    "near_top_k": 1,
    "in_score": "ada",
}


def _banks_at(r):
    """ENS and VSNL features used for each batch of the mixed stream (fixed after batch 2)."""
    ens = [TEXTS[t] for t in r.trace.ens_sentences]
    vsnl = [TEXTS[t] for t in r.trace.vsnl_labels]
    return [([], [])] + [(ens, vsnl)] * 3


@pytest.mark.parametrize(
    ("preset", "ens", "vsnl"),
    [
        # ENS cleaned once: every trailing dot (authors) or one (lenient), then ". ." is left as
        # "."; VSNL cleaned at parse, per class and over the bank, as the authors' labels.py and
        # vsnl.py: "moss. . . ." -> "moss. . ." -> "moss. ." -> "moss."
        ("authors_code", ["a red fox.", "a blue sky"], ["eagle", "moss."]),
        ("paper", ["a red fox.", "a blue sky."], ["eagle", "moss."]),
    ],
)
def test_banks_at_rebuilds_the_banks_from_raw_answers_in_the_method_style(
    tmp_path, preset, ens, vsnl
):
    """:func:`ants.inspection.banks_at` on the answers log of a run equals the run's own banks
    at every batch, and :func:`ants.stages.negative_texts` lists every text the run encoded,
    for answers whose dots the two styles clean differently."""
    from ants.answers_log import answer_records, write_answer_log
    from ants.inspection import banks_at
    from ants.stages import negative_texts

    raw = {
        "img0": "a red fox. .",
        "img2": "a blue sky..",
        "owl": "1. eagle. .\n2. moss. . . .\n3. Eagle",
        "cat": "1. leopard",
    }
    cfg = {**MIXED_CFG, "preset": preset, "near_top_k": 1}
    style = ants_config(cfg).answer_parser
    asked = []

    def answerer(queries):
        out = []
        for q in queries:
            a = parse_answer(
                q.kind, raw[q.image if q.kind == "ens" else q.class_name], q.class_name, style=style
            )
            asked.append((q, a))
            out.append(a)
        return out

    texts = {t: TEXTS["a red fox"] for t in ("a red fox.", "a red fox")}
    texts.update({t: TEXTS["a blue sky"] for t in ("a blue sky", "a blue sky.")})
    texts.update({t: TEXTS[t.rstrip(".")] for t in ("eagle", "moss", "moss.")})
    encoded = set()

    def encode(batch, template):
        encoded.update((template, t) for t in batch)
        return np.stack([texts[t] for t in batch])

    r = run_tiny(MIXED_STREAM, cfg, answerer, encode)
    assert r.trace.ens_sentences == ens and r.trace.vsnl_labels == vsnl
    batches = [b for b, _ in r.trace.queries]
    log = answer_records(
        [q for q, _ in asked], [a for _, a in asked], stream_id="s", batch_index=batches
    )
    for i, b in enumerate(r.trace.batch):
        banks = banks_at(
            log,
            int(b),
            config=cfg,
            preds=r.predictions.tolist(),
            pred_batches=np.repeat(r.trace.batch, 2).tolist(),
            class_names=NAMES,
        )
        assert (len(banks.ens), len(banks.vsnl)) == (r.trace.ens_size[i], r.trace.vsnl_size[i])
    assert (banks.ens, banks.vsnl) == (ens, vsnl)
    # the encode_negatives job encodes these texts; the replay looks up exactly what it encoded
    path = write_answer_log(tmp_path / "log.parquet", log, timings=False)
    pairs = negative_texts(path, {"config": cfg})
    assert encoded <= set(pairs)
    assert {t for _, t in pairs} >= {*ens, *vsnl}


def test_lambda_code_statistics_by_hand():
    r = run_tiny(MIXED_STREAM, MIXED_CFG, Oracle(**MIXED_ORACLE))
    tr = r.trace
    assert tr.ens_size.tolist() == [0, 2, 2, 2] and tr.vsnl_size.tolist() == [0, 2, 2, 2]
    feats = np.stack(MIXED_STREAM)
    s_nl = r.variants["s_nl"]
    bal_a, bal_b = [], []
    for b, (ens, vsnl) in enumerate(_banks_at(r)):
        x = feats[2 * b : 2 * b + 2]
        if ens:
            # balanced group size K = 3: 2 ENS entries -> plain; VSNL tiled 10x -> 20 -> 6 groups of 3
            bal_a.extend(negative_label(x, IDT, np.stack(ens)).tolist())
            bal_b.extend(
                negative_label(x, IDT, np.tile(np.stack(vsnl), (10, 1)), group_size=3).tolist()
            )
        else:
            bal_a.extend(s_nl[2 * b : 2 * b + 2].tolist())
            bal_b.extend(s_nl[2 * b : 2 * b + 2].tolist())
    for b in range(4):
        a = np.mean(bal_a[: 2 * b + 2])
        bb = np.mean(bal_b[: 2 * b + 2])
        assert tr.lam[b] == pytest.approx((1 - a) / ((1 - a) + (1 - bb)), rel=1e-5)
    lam_rows = np.repeat(tr.lam, 2)
    expected = lam_rows * r.variants["far_only"] + (1 - lam_rows) * r.variants["near_only"]
    np.testing.assert_allclose(r.variants["ada"], expected, rtol=1e-6, atol=1e-6)
    assert r.scores.tolist() == r.variants["ada"].tolist()  # in_score = ada


def test_lambda_paper_statistics_by_hand():
    r = run_tiny(MIXED_STREAM, {**MIXED_CFG, "lambda_stats": "paper"}, Oracle(**MIXED_ORACLE))
    far, near = r.variants["far_only"], r.variants["near_only"]
    mined = [0, 2]  # the OOD samples of batches 1 and 2 (caching stops after the update)
    assert r.trace.lam[0] == 0.5  # only img0, whose S_ens = S_vsnl = S_nl
    a, b = far[mined].astype(np.float64).mean(), near[mined].astype(np.float64).mean()
    expected = adaptive_weight(a, b)
    assert r.trace.lam[1:].tolist() == pytest.approx([expected] * 3, rel=1e-9)


def test_lambda_paper_is_one_half_before_anything_is_mined():
    r = run_tiny([id_img(0)] * 4, {**MIXED_CFG, "lambda_stats": "paper"}, Oracle())
    assert r.trace.lam.tolist() == [0.5, 0.5]


def test_empty_banks_fall_back_to_s_nl():
    r = run_tiny(MIXED_STREAM, {**MIXED_CFG, "vsnl_start": 100}, Oracle())  # every ENS answer fails
    s = r.variants["s_nl"]
    assert r.variants["far_only"].tolist() == s.tolist()
    assert r.variants["near_only"].tolist() == s.tolist()
    np.testing.assert_allclose(r.variants["ada"], s, rtol=1e-6, atol=1e-6)


def test_large_banks_use_the_grouped_score():
    # group_size 1 makes a 2-entry bank grouped: G = 2 groups of 1 (seed-0 layout)
    r = run_tiny(MIXED_STREAM, {**MIXED_CFG, "group_size": 1}, Oracle(**MIXED_ORACLE))
    feats = np.stack(MIXED_STREAM)[2:]
    ens = np.stack([TEXTS[t] for t in r.trace.ens_sentences])
    np.testing.assert_allclose(
        r.variants["far_only"][2:],
        negative_label(feats, IDT, ens, group_size=1),
        rtol=1e-6,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        r.variants["s_nl"],
        negative_label(np.stack(MIXED_STREAM), IDT, NEG, group_size=1),
        rtol=1e-6,
        atol=1e-6,
    )


def test_causality_later_samples_do_not_change_earlier_batches():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 6)).astype(np.float32)
    base[:, 3] += rng.choice([0.0, 3.0], 40)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    texts = {f"s{i}": unit(*rng.standard_normal(6)) for i in range(60)}
    texts.update({f"v{i}": unit(*rng.standard_normal(6)) for i in range(30)})

    def enc(t, template):
        return np.stack([texts[x] for x in t])

    def answerer(qs):
        return [
            Answer("", (f"s{int(q.image[3:]) % 60}",))
            if q.kind == "ens"
            else Answer("", tuple(f"v{(NAMES.index(q.class_name) * 7 + j) % 30}" for j in range(5)))
            for q in qs
        ]

    cfg = {
        "ens_trigger_size": 3,
        "vsnl_start": 2,
        "vsnl_interval": 3,
        "near_top_k": 2,
        "group_size": 2,
        "in_score": "ada",
    }

    def go(feats):
        return run_ants(
            image_features=feats,
            items=[f"img{i}" for i in range(40)],
            id_text_features=IDT,
            negative_features=NEG,
            class_names=NAMES,
            encode_text=enc,
            answerer=answerer,
            config=cfg,
            batch_size=4,
        )

    a = go(base)
    altered = base.copy()
    altered[24:] = altered[24:][::-1] * -1.0
    b = go(altered)
    assert len(a.trace.queries) > 0
    # the change is real
    assert a.variants["s_nl"][24:].tolist() != b.variants["s_nl"][24:].tolist()
    for name in a.variants:
        assert a.variants[name][:24].tolist() == b.variants[name][:24].tolist(), name
    assert [q for q in a.trace.queries if q[0] <= 6] == [q for q in b.trace.queries if q[0] <= 6]
    assert a.trace.lam[:6].tolist() == b.trace.lam[:6].tolist()
    # determinism: the same input gives bit-identical output and trace
    c = go(base)
    for name in a.variants:
        assert a.variants[name].tobytes() == c.variants[name].tobytes()
    assert a.trace.queries == c.trace.queries
    assert a.trace.lam.tobytes() == c.trace.lam.tobytes()
    assert a.trace.threshold.tobytes() == c.trace.threshold.tobytes()


def test_activation_aware_ens_matches_a_direct_recomputation():
    r_plain = run_tiny(
        MIXED_STREAM, {**MIXED_CFG, "activation_aware_ens": False}, Oracle(**MIXED_ORACLE)
    )
    cfg = {**MIXED_CFG, "activation_aware_ens": True, "activation_top": 2, "activation_step": 1}
    r_act = run_tiny(MIXED_STREAM, cfg, Oracle(**MIXED_ORACLE))
    assert r_act.trace.queries == r_plain.trace.queries  # queries never depend on the ENS score
    feats = torch.from_numpy(np.stack(MIXED_STREAM))
    ens = torch.from_numpy(np.stack([TEXTS[t] for t in r_plain.trace.ens_sentences]))
    ref = torch.from_numpy(r_plain.variants["far_only"])
    expected = r_plain.variants["far_only"].copy()
    for b in range(1, 4):  # the bank is non-empty from batch 2
        sl = slice(2 * b, 2 * b + 2)
        t = activation_threshold(ref[2 : 2 * b + 2].numpy())
        x = feats[sl]
        lse_id = torch.logsumexp(x @ torch.from_numpy(IDT).T / 0.01, dim=1)
        out = activation_selected_score(
            lse_id, x @ ens.T / 0.01, ref[sl], t, gap=0.5, top=2, step=1
        )
        if out is not None:
            expected[sl] = out.numpy()
    np.testing.assert_allclose(r_act.variants["far_only"], expected, rtol=1e-6, atol=1e-6)
    assert r_act.variants["s_nl"].tolist() == r_plain.variants["s_nl"].tolist()


def test_bad_inputs_are_clear_errors():
    feats = np.stack(ENS_STREAM)
    kw = dict(
        image_features=feats,
        id_text_features=IDT,
        negative_features=NEG,
        class_names=NAMES,
        encode_text=Encoder(),
        answerer=Oracle(),
        config=ENS_CFG,
        batch_size=2,
    )
    with pytest.raises(ValueError, match="items must be a sequence of 8 strings"):
        run_ants(items=["a"] * 7, **kw)
    with pytest.raises(ValueError, match="class_names must be a sequence of 3 strings"):
        run_ants(items=[f"i{i}" for i in range(8)], **{**kw, "class_names": ["a", "b"]})
    with pytest.raises(ValueError, match="feature dimension mismatch: negative_features has d=5"):
        run_ants(items=[f"i{i}" for i in range(8)], **{**kw, "negative_features": NEG[:, :5]})

    def short(queries):
        return []

    with pytest.raises(RuntimeError, match="returned 0 answers for 2 queries at batch 2"):
        run_ants(items=[f"i{i}" for i in range(8)], **{**kw, "answerer": short})

    def not_unit(texts, template):
        return np.full((len(texts), 6), 0.9, np.float32)

    with pytest.raises(ValueError, match="L2-normalised"):
        run_ants(
            items=[f"img{i}" for i in range(8)],
            **{**kw, "answerer": Oracle(ens={"img0": ["x"]}), "encode_text": not_unit},
        )


def test_run_method_dispatches_to_ants():
    r = run_method(
        "ants",
        image_features=np.stack(ENS_STREAM),
        items=[f"img{i}" for i in range(8)],
        id_text_features=IDT,
        negative_features=NEG,
        class_names=NAMES,
        encode_text=Encoder(),
        answerer=Oracle(),
        config=ENS_CFG,
        batch_size=2,
    )
    assert r.method == "ants" and r.scores.dtype == np.float32 and r.scores.shape == (8,)
    with pytest.raises(
        ValueError, match="unknown method 'antz'; valid methods: mcm, neglabel, adaneg, ants"
    ):
        run_method("antz")


# ---------------------------------------------------------------------------------------------
# the static baselines the stream methods are compared with


def test_static_neglabel_and_mcm_by_hand():
    from ants.methods.static import run_mcm, run_neglabel

    v = np.array([[0.6, 0.8, 0.0]], np.float32)  # cosines: ID 0.6, negatives 0.8 and 0.0
    idt = np.array([[1.0, 0.0, 0.0]], np.float32)
    neg = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    # two groups of one negative each: mean of the two two-way softmaxes (tau = 0.01)
    r = run_neglabel(image_features=v, id_text_features=idt, negative_features=neg, n_groups=2)
    assert r.scores[0] == pytest.approx((sig(60 - 80) + sig(60 - 0)) / 2, rel=1e-5)
    plain_score = run_neglabel(
        image_features=v, id_text_features=idt, negative_features=neg, n_groups=1
    ).scores[0]
    assert plain_score == pytest.approx(np.exp(60) / (np.exp(60) + np.exp(80) + 1), rel=1e-4)
    assert r.predictions.tolist() == [0]
    with pytest.raises(ValueError, match="n_groups=100 exceeds the 2 negatives"):
        run_neglabel(image_features=v, id_text_features=idt, negative_features=neg)
    two = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    m = run_mcm(image_features=v, id_text_features=two)
    assert m.scores[0] == pytest.approx(np.exp(0.8) / (np.exp(0.6) + np.exp(0.8)), rel=1e-6)
    assert m.predictions.tolist() == [1]
    m2 = run_method("mcm", image_features=v, id_text_features=two, temperature=0.1)
    assert m2.scores[0] == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-6)
