"""AdaNeg (docs/METHOD.md section 5) against a direct, slot-by-slot re-implementation."""

import numpy as np
import pytest
import torch

from ants.methods import run_method
from ants.methods.adaneg import (
    PRESETS,
    AdaNegConfig,
    AdaNegMemory,
    adaneg_config,
    adaptive_cosines,
    entropy,
    run_adaneg,
)
from ants.scores import negative_label

D, K, M = 8, 4, 20


def _unit_rows(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(3)
    idt = _unit_rows(rng.standard_normal((K, D)))
    neg = _unit_rows(rng.standard_normal((M, D)))
    n = 60
    centre = np.where(
        rng.random((n, 1)) < 0.5, idt[rng.integers(0, K, n)], neg[rng.integers(0, M, n)]
    )
    x = _unit_rows(centre * rng.uniform(1.0, 3.0, (n, 1)) + rng.standard_normal((n, D)))
    return x, idt, neg


def _softmax(z):
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def reference_entropy(logits32):
    """The authors' priority of one sample: ``p = torch.softmax`` of its float32 logits, then
    ``-(p * log(p + 1e-8)).sum()``, in float32 (their op order)."""
    p = torch.softmax(torch.as_tensor(logits32, dtype=torch.float32), dim=0)
    return float(-(p * torch.log(p + 1e-8)).sum())


def direct_adaneg(
    x, idt, neg, batch_size, cfg, *, slots=None, beta=None, proxy=None, events=None
):
    """AdaNeg written out literally: per-label slot lists, explicit proxy vectors per sample.

    ``slots`` image slots per label, ``beta`` and ``proxy`` default to the config's
    ``memory_length``, ``beta`` and ``proxy`` (the paper behaviour). The memory follows the
    authors' code: priority :func:`reference_entropy` of the float32 logits ``x @ text.T / tau``;
    a full label's entries, the text slot (entropy 0) first, are sorted ascending (stably) and
    the LAST one is replaced when the new entropy is lower than any of them. ``events``: a list
    that receives ``(label, action, image indices of the label's slots after it, entropy)`` per
    offered sample, in order.
    """
    slots_per_label = cfg.memory_length if slots is None else slots
    beta = cfg.beta if beta is None else beta
    proxy = cfg.proxy if proxy is None else proxy
    k = len(idt)
    text32 = np.concatenate([idt, neg]).astype(np.float32)
    text = text32.astype(np.float64)
    memory = [[] for _ in text]  # per label: [feature, entropy, image index] in slot order
    hi = cfg.threshold + cfg.gap * (1 - cfg.threshold)
    lo = cfg.threshold - cfg.gap * cfg.threshold
    scores, preds, actions = [], [], {"insert": 0, "replace": 0, "skip": 0}
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        s_nl = negative_label(xb, idt, neg, n_groups=cfg.n_groups, tau=cfg.tau)
        logits = xb.astype(np.float64) @ text.T / cfg.tau
        logits32 = (torch.from_numpy(xb) @ torch.from_numpy(text32).T / cfg.tau).numpy()
        for side in ("id", "neg"):
            for i in range(len(xb)):
                if side == "id" and s_nl[i] > hi:
                    part, offset = logits32[i, :k], 0
                elif side == "neg" and s_nl[i] < lo:
                    part, offset = logits32[i, k:], k
                else:
                    continue
                label = offset + int(np.argmax(part))
                ent = reference_entropy(part)
                slots = memory[label]
                if len(slots) < slots_per_label:
                    slots.append([xb[i], ent, start + i])
                    action = "insert"
                else:
                    entries = [0.0] + [e for _, e, _ in slots]  # slot 0: the text, entropy 0
                    ranked = torch.sort(torch.tensor(entries, dtype=torch.float32), stable=True)
                    if (torch.tensor(ent, dtype=torch.float32) < ranked.values).any():
                        slots[int(ranked.indices[-1]) - 1] = [xb[i], ent, start + i]
                        action = "replace"
                    else:
                        action = "skip"
                actions[action] += 1
                if events is not None:
                    events.append((label, action, [j for _, _, j in slots], ent))
        for i, v in enumerate(xb.astype(np.float64)):
            proxies = []
            for c in range(len(text)):
                entries = [text[c]] + [f.astype(np.float64) for f, _, _ in memory[c]]
                if proxy == "sample":
                    w = [np.exp(-beta * (1 - v @ m)) for m in entries]
                else:
                    w = [1.0] * len(entries)
                p = sum(wi * m for wi, m in zip(w, entries, strict=True))
                proxies.append(p / np.linalg.norm(p))
            proxies = np.stack(proxies).astype(np.float32)
            s_ada = negative_label(
                xb[i : i + 1], proxies[:k], proxies[k:], n_groups=cfg.n_groups, tau=cfg.tau
            )[0]
            scores.append(s_ada + cfg.lam * s_nl[i])
            ada_logits = proxies.astype(np.float64) @ v / cfg.tau
            mix = _softmax(logits[i]) + cfg.lam * _softmax(ada_logits)
            preds.append(int(np.argmax(mix[:k])))
    return np.array(scores), np.array(preds), memory, actions


@pytest.mark.parametrize("proxy", ["sample", "task"])
def test_matches_the_direct_loop(world, proxy):
    x, idt, neg = world
    cfg = AdaNegConfig(n_groups=5, memory_length=2, proxy=proxy, tau=0.05)  # entropies well apart
    got = run_adaneg(
        image_features=x, id_text_features=idt, negative_features=neg, batch_size=8, config=cfg
    )
    scores, preds, _, actions = direct_adaneg(x, idt, neg, 8, cfg)
    # the stream exercises every memory path
    assert actions["insert"] > 0 and actions["replace"] > 0 and actions["skip"] > 0
    assert {k: int(v.sum()) for k, v in got.trace.items()} == actions
    np.testing.assert_allclose(got.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.predictions, preds)
    np.testing.assert_allclose(
        got.variants["s_nl"],
        negative_label(x, idt, neg, n_groups=5, tau=cfg.tau),
        rtol=1e-5,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        got.scores, got.variants["s_ada"] + 0.1 * got.variants["s_nl"], rtol=1e-6
    )


def test_memory_insert_and_replace_by_hand():
    text = torch.eye(3)
    mem = AdaNegMemory(text, length=2)
    f = np.eye(3, dtype=np.float32)
    assert mem.insert(1, f[0], 0.5) == "insert"
    assert mem.insert(1, f[2], 0.9) == "insert"
    assert mem.insert(1, f[1], 0.95) == "skip"  # not lower than the worst (0.9)
    assert mem.insert(1, f[1], 0.7) == "replace"  # replaces slot 1 (entropy 0.9)
    np.testing.assert_array_equal(mem.slots(1), [f[0], f[1]])
    assert mem.insert(1, f[2], 0.1) == "replace"  # now the worst is 0.7 in slot 1
    np.testing.assert_array_equal(mem.slots(1), [f[0], f[2]])
    assert mem.slots(0).shape == (0, 3)
    # ties: the LAST of the highest-entropy slots goes (the authors' stable ascending sort)
    assert mem.insert(2, f[0], 0.4) == "insert"
    assert mem.insert(2, f[1], 0.4) == "insert"
    assert mem.insert(2, f[2], 0.4) == "skip"  # not strictly lower
    assert mem.insert(2, f[2], 0.3) == "replace"
    np.testing.assert_array_equal(mem.slots(2), [f[0], f[2]])
    np.testing.assert_array_equal(mem.entropies(2), [0.4, 0.3])
    # the Gram matrix of [text; slots] used for the proxy norms
    full = np.stack([np.eye(3)[1], f[0], f[2]])
    np.testing.assert_allclose(mem.gram_of(1), full @ full.T)


def test_memory_grows_past_its_initial_capacity():
    mem = AdaNegMemory(torch.eye(40)[:, :4] + 0.0, length=1)
    for label in range(40):
        mem.insert(label, np.ones(4, np.float32) * label, 1.0)
    assert mem.n_rows == 40
    assert [float(mem.slots(c)[0, 0]) for c in (0, 17, 39)] == [0.0, 17.0, 39.0]


def test_entropy_is_the_authors_form():
    logits = torch.tensor([[0.0, 0.0], [100.0, 0.0]])
    got = entropy(logits)
    p = torch.softmax(logits, 1)
    torch.testing.assert_close(got, -(p * torch.log(p + 1e-8)).sum(1))
    assert got[0].item() == pytest.approx(np.log(2), abs=1e-6)


def test_a_batch_is_scored_with_its_own_cached_samples(world):
    x, idt, neg = world
    cfg = AdaNegConfig(n_groups=5, memory_length=2, tau=0.05)
    one = run_adaneg(
        image_features=x[:8], id_text_features=idt, negative_features=neg, batch_size=8, config=cfg
    )
    assert one.trace["insert"][0] > 0
    # with an empty memory every proxy is its text, so S_ada would equal S_nl
    assert not np.allclose(one.variants["s_ada"], one.variants["s_nl"], atol=1e-4)
    scores, _, _, _ = direct_adaneg(x[:8], idt, neg, 8, cfg)
    np.testing.assert_allclose(one.scores, scores, rtol=1e-5, atol=1e-6)


def test_causal_and_deterministic(world):
    x, idt, neg = world
    kw = dict(
        id_text_features=idt, negative_features=neg, batch_size=8, config={"memory_length": 2}
    )
    a = run_adaneg(image_features=x, **kw)
    b = run_adaneg(image_features=np.concatenate([x[:32], x[32:][::-1]]), **kw)
    assert a.scores[:32].tobytes() == b.scores[:32].tobytes()
    assert a.scores[32:].tolist() != b.scores[32:].tolist()
    c = run_adaneg(image_features=x, **kw)
    assert a.scores.tobytes() == c.scores.tobytes()
    assert a.predictions.tolist() == c.predictions.tolist()


def test_defaults_and_cuts():
    cfg = AdaNegConfig()
    assert (cfg.n_groups, cfg.memory_length, cfg.beta, cfg.lam, cfg.proxy) == (
        5,
        10,
        5.5,
        0.1,
        "sample",
    )
    assert (cfg.high_cut, cfg.low_cut) == (0.75, 0.25)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"memleng": 3},
            r"unknown AdaNeg setting\(s\) 'memleng'; valid settings: n_groups, memory_length",
        ),
        ({"proxy": "both"}, r"AdaNegConfig.proxy='both' is not valid; valid values: sample, task"),
        ({"gap": 2.0}, r"AdaNegConfig.gap must be a number in \[0, 1\], got 2.0"),
        ({"n_groups": 0}, r"AdaNegConfig.n_groups must be an integer >= 1, got 0"),
    ],
)
def test_bad_config(config, message):
    with pytest.raises(ValueError, match=message):
        adaneg_config(config)


def test_run_method_and_group_count_check(world):
    x, idt, neg = world
    r = run_method(
        "adaneg", image_features=x, id_text_features=idt, negative_features=neg, batch_size=16
    )
    assert (
        r.method == "adaneg"
        and r.scores.shape == (60,)
        and set(r.variants) == {"adaneg", "s_ada", "s_nl"}
    )
    with pytest.raises(ValueError, match="n_groups=50 exceeds the 20 negatives"):
        run_adaneg(
            image_features=x, id_text_features=idt, negative_features=neg, config={"n_groups": 50}
        )


# ------------------------------------------------------------------------------------------
# presets: paper (10 slots, beta 5.5, sample proxy) and authors_code (L - 1 slots, int(beta),
# task proxy), each against the direct loop with the values written out here


@pytest.mark.parametrize(
    ("preset", "overrides", "slots", "beta", "proxy"),
    [
        ("paper", {}, 3, 5.5, "sample"),
        ("authors_code", {}, 2, 5.0, "task"),
        # the authors' slots and truncated beta with the sample proxy: beta now matters
        ("authors_code", {"proxy": "sample"}, 2, 5.0, "sample"),
    ],
)
def test_presets_match_the_direct_loop(world, preset, overrides, slots, beta, proxy):
    x, idt, neg = world
    cfg = adaneg_config({"preset": preset, "memory_length": 3, "tau": 0.05, **overrides})
    assert (cfg.image_slots, cfg.effective_beta, cfg.proxy) == (slots, beta, proxy)
    got = run_adaneg(
        image_features=x, id_text_features=idt, negative_features=neg, batch_size=8, config=cfg
    )
    ref = AdaNegConfig(memory_length=3, tau=0.05)  # beta 5.5 / sample unless told otherwise
    scores, preds, memory, actions = direct_adaneg(
        x, idt, neg, 8, ref, slots=slots, beta=beta, proxy=proxy
    )
    assert actions["replace"] > 0 and actions["skip"] > 0
    assert max(len(m) for m in memory) == slots  # a label is full after `slots` images
    assert {k: int(v.sum()) for k, v in got.trace.items()} == actions
    np.testing.assert_allclose(got.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.predictions, preds)


def test_presets_differ_measurably(world):
    x, idt, neg = world
    kw = dict(image_features=x, id_text_features=idt, negative_features=neg, batch_size=8)
    base = {"memory_length": 3, "tau": 0.05}
    paper = run_adaneg(config={"preset": "paper", **base}, **kw)
    code = run_adaneg(config={"preset": "authors_code", **base}, **kw)
    assert np.abs(paper.scores - code.scores).max() > 1e-2
    # each switch on its own changes the result
    slots_only = run_adaneg(config={**base, "authors_slots": True}, **kw)
    assert slots_only.trace["insert"].sum() < paper.trace["insert"].sum()
    assert np.abs(slots_only.scores - paper.scores).max() > 1e-3
    beta_only = run_adaneg(config={**base, "truncate_beta": True}, **kw)
    assert beta_only.trace["insert"].tolist() == paper.trace["insert"].tolist()
    assert np.abs(beta_only.scores - paper.scores).max() > 1e-4
    task_only = run_adaneg(config={**base, "proxy": "task"}, **kw)
    assert np.abs(task_only.scores - paper.scores).max() > 1e-3
    # the default (no preset) is the paper preset
    default = run_adaneg(config=base, **kw)
    assert default.scores.tobytes() == paper.scores.tobytes()


def test_preset_settings():
    assert PRESETS == {
        "paper": {"authors_slots": False, "truncate_beta": False, "proxy": "sample"},
        "authors_code": {"authors_slots": True, "truncate_beta": True, "proxy": "task"},
    }
    paper, code = adaneg_config(), adaneg_config("authors_code")
    assert paper == adaneg_config({"preset": "paper"}) == AdaNegConfig.preset("paper")
    assert (paper.memory_length, paper.image_slots, paper.effective_beta, paper.proxy) == (
        10, 10, 5.5, "sample")
    assert (code.memory_length, code.image_slots, code.effective_beta, code.proxy) == (
        10, 9, 5.0, "task")
    assert code.beta == 5.5  # the setting is kept; truncation is the switch
    over = adaneg_config({"preset": "authors_code", "proxy": "sample", "beta": 7.9})
    assert (over.authors_slots, over.proxy, over.effective_beta) == (True, "sample", 7.0)
    assert AdaNegConfig.preset("authors_code", memory_length=4).image_slots == 3
    assert code.to_dict()["authors_slots"] is True


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"preset": "authors"}, r"unknown AdaNeg preset 'authors'; valid presets: paper, authors_code"),
        ("code", r"unknown AdaNeg preset 'code'; valid presets: paper, authors_code"),
        (
            {"preset": "authors_code", "memory_length": 1},
            r"AdaNegConfig.memory_length must be >= 2 with authors_slots=True",
        ),
        ({"truncate_beta": "yes"}, r"AdaNegConfig.truncate_beta must be true or false, got 'yes'"),
        ({"bogus": 1}, r"valid settings: n_groups, .*, authors_slots, truncate_beta, preset$"),
    ],
)
def test_bad_preset_config(config, message):
    with pytest.raises(ValueError, match=message):
        adaneg_config(config)


# ------------------------------------------------------------------------------------------
# the bucketed memory and the float32 adaptive pass


def test_memory_bookkeeping_against_plain_lists():
    rng = np.random.default_rng(11)
    c, d, length = 30, 6, 3
    text = torch.from_numpy(_unit_rows(rng.standard_normal((c, d))))
    mem = AdaNegMemory(text, length)
    ref = [[] for _ in range(c)]
    for _ in range(400):  # labels move between buckets in random order, with swaps
        lab = int(rng.integers(0, c))
        f = _unit_rows(rng.standard_normal(d))
        ent = float(rng.integers(0, 5)) / 4  # few values: many ties
        slots = ref[lab]
        if len(slots) < length:
            slots.append((f, ent))
            expect = "insert"
        else:  # the highest entropy, the last slot among equals
            worst = max(range(length), key=lambda i: (slots[i][1], i))
            expect = "skip" if not ent < slots[worst][1] else "replace"
            if expect == "replace":
                slots[worst] = (f, ent)
        assert mem.insert(lab, f, ent) == expect
    assert mem.n_rows == sum(1 for s in ref if s)
    assert mem.n_filled == sum(len(s) for s in ref)
    for lab in range(c):
        feats = np.array([f for f, _ in ref[lab]]).reshape(-1, d)
        np.testing.assert_array_equal(mem.slots(lab), feats)
        np.testing.assert_array_equal(mem.entropies(lab), [e for _, e in ref[lab]])
        full = np.concatenate([text[lab].numpy()[None], feats]).astype(np.float64)
        np.testing.assert_allclose(mem.gram_of(lab), full @ full.T, rtol=1e-12, atol=1e-12)
        assert mem.count(lab) == len(ref[lab])


@pytest.mark.parametrize("proxy", ["sample", "task"])
def test_adaptive_cosines_float32_agree_with_float64(proxy):
    rng = np.random.default_rng(5)
    c, d, n, length = 200, 64, 40, 10
    text = _unit_rows(rng.standard_normal((c, d)))
    mem = AdaNegMemory(torch.from_numpy(text), length)
    ref = [[] for _ in range(c)]
    for _ in range(900):  # every fill level 0..10, some replacements
        lab = int(rng.integers(0, 150))
        f = _unit_rows(text[lab] + 0.7 * rng.standard_normal(d))
        ent = float(rng.random())
        if mem.insert(lab, f, ent) == "insert":
            ref[lab].append(f)
        elif len(ref[lab]) == length:
            ref[lab] = [s.astype(np.float32) for s in mem.slots(lab)]
    assert {len(r) for r in ref} == set(range(length + 1))
    x = _unit_rows(text[rng.integers(0, c, n)] + 0.5 * rng.standard_normal((n, d)))
    x64 = x.astype(np.float64)
    text_cos = torch.from_numpy(x) @ torch.from_numpy(text).T
    got = adaptive_cosines(torch.from_numpy(x), text_cos, mem, beta=5.5, proxy=proxy).numpy()
    want = np.empty((n, c))
    for lab in range(c):
        m = np.concatenate([text[lab][None], np.array(ref[lab]).reshape(-1, d)]).astype(np.float64)
        w = np.exp(-5.5 * (1 - x64 @ m.T)) if proxy == "sample" else np.ones((n, len(m)))
        p = w @ m
        want[:, lab] = np.sum(p * x64, axis=1) / np.linalg.norm(p, axis=1)
    # float32 throughout: a few ulps of a cosine (logits are cos / 0.01: < 1e-4 there)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_dropped_negatives_match_the_direct_loop(world):
    # 20 negatives in 3 groups: the last 20 mod 3 = 2 are dropped from the grouped scores but
    # still take part in caching (argmax) and in the softmax of the predictions
    x, idt, neg = world
    cfg = AdaNegConfig(n_groups=3, memory_length=2, tau=0.05)
    got = run_adaneg(
        image_features=x, id_text_features=idt, negative_features=neg, batch_size=8, config=cfg
    )
    scores, preds, _, actions = direct_adaneg(x, idt, neg, 8, cfg)
    assert {k: int(v.sum()) for k, v in got.trace.items()} == actions
    np.testing.assert_allclose(got.scores, scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.predictions, preds)


@pytest.mark.parametrize("n_groups", [5, 3])
def test_block_log_sum_exps_against_torch(n_groups):
    from ants.methods.adaneg import _Blocks

    rng = np.random.default_rng(2)
    k, m, n, tau = 6, 20, 7, 0.01
    per = m // n_groups
    blocks = _Blocks(k, n_groups, per, k + m, tau)
    cos = torch.from_numpy(rng.uniform(-0.3, 0.4, (k + m, n)).astype(np.float32))
    # a sample whose vanilla max (label 2, cos 1) collapses under adaptation while the rest of
    # the ID block sits 1.2 below it: exp((cos - max) / tau) underflows there, so the
    # adaptive log-sum-exp must be recomputed exactly
    cos[:k, 0] = -0.2
    cos[2, 0] = 1.0
    maxes, e = blocks.exponentials(cos)
    want = [cos[:k], *cos[k : k + n_groups * per].view(n_groups, per, n)]
    if n_groups * per < m:
        want.append(cos[k + n_groups * per :])
    want = torch.stack([torch.logsumexp(w / tau, dim=0) for w in want])
    torch.testing.assert_close(blocks.lse(maxes, blocks.sums(e)), want, rtol=1e-6, atol=1e-4)
    rows = torch.tensor([1, 2, 9, 10, k + m - 1])  # sorted labels with images
    ada = cos.clone()
    ada[rows] = torch.from_numpy(rng.uniform(-0.3, 0.6, (len(rows), n)).astype(np.float32))
    ada[[1, 2], 0] = -1.0  # every ID label with images drops far below the vanilla max
    got = blocks.adaptive_lse(ada, e, maxes, rows)
    want = [ada[:k], *ada[k : k + n_groups * per].view(n_groups, per, n)]
    if n_groups * per < m:
        want.append(ada[k + n_groups * per :])
    want = torch.stack([torch.logsumexp(w / tau, dim=0) for w in want])
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-4)
    assert torch.isfinite(got).all()


# ------------------------------------------------------------------------------------------
# a world as confident as real CLIP: every image's top cosine is 0.35-0.6, so its largest
# logit is 35-60 at tau = 0.01 and float32 rounding decides which memory slot is replaced


@pytest.fixture(scope="module")
def confident_world():
    rng = np.random.default_rng(14)
    k, m, d, n = 12, 60, 64, 480
    idt = _unit_rows(rng.standard_normal((k, d)))
    neg = _unit_rows(rng.standard_normal((m, d)))
    is_id = rng.random(n) < 0.6
    centre = np.where(is_id[:, None], idt[rng.integers(0, k, n)], neg[rng.integers(0, m, n)])
    a = rng.uniform(0.35, 0.6, (n, 1))
    u = rng.standard_normal((n, d))
    u = _unit_rows(u - (u * centre).sum(1, keepdims=True) * centre)  # orthogonal to the centre
    x = _unit_rows(a * centre + np.sqrt(1 - a**2) * u)
    top = (x @ np.concatenate([idt, neg]).T).max(axis=1) / 0.01
    assert top.min() >= 35 and top.max() <= 61
    return x, idt, neg


def _recorded_inserts(monkeypatch, x, idt, neg):
    """Wrap AdaNegMemory.insert to record what :func:`direct_adaneg`'s ``events`` holds, with
    labels in stored order (found by their text feature) and images by their index in ``x``."""
    label_of = {row.tobytes(): c for c, row in enumerate(np.concatenate([idt, neg]))}
    image_of = {row.tobytes(): i for i, row in enumerate(x)}
    events = []
    insert = AdaNegMemory.insert

    def recording(self, label, feature, ent):
        action = insert(self, label, feature, ent)
        slots = [image_of[f.tobytes()] for f in self.slots(label)]
        events.append((label_of[self._text_np[label].tobytes()], action, slots, ent))
        return action

    monkeypatch.setattr(AdaNegMemory, "insert", recording)
    return events


@pytest.mark.parametrize(
    ("preset", "slots", "beta", "proxy"),
    [("authors_code", 2, 5.0, "task"), ("paper", 3, 5.5, "sample")],
)
def test_memory_matches_the_authors_loop_slot_by_slot_on_a_confident_world(
    monkeypatch, confident_world, preset, slots, beta, proxy
):
    """Issue 14: with logits of 35-60, an entropy from ``exp(logit - lse)`` in float32 was off
    by ~2e-6 and often negative, which reordered the replacements; every offered sample must
    take the authors' decision (label, insert / replace which slot / skip) in their order."""
    x, idt, neg = confident_world
    cfg = adaneg_config({"preset": preset, "memory_length": 3, "tau": 0.01})
    got_events = _recorded_inserts(monkeypatch, x, idt, neg)
    got = run_adaneg(
        image_features=x, id_text_features=idt, negative_features=neg, batch_size=32, config=cfg
    )
    want_events = []
    scores, preds, _, actions = direct_adaneg(
        x, idt, neg, 32, AdaNegConfig(memory_length=3, tau=0.01),
        slots=slots, beta=beta, proxy=proxy, events=want_events,
    )
    ents = np.array([e for *_, e in want_events])
    assert actions["replace"] >= 40 and actions["skip"] >= 100
    # confident: most priorities are below 1e-4, where the old error (~2e-6) reorders them
    assert np.mean(ents < 1e-4) > 0.5 and ents.min() >= 0.0
    assert [e[:3] for e in got_events] == [e[:3] for e in want_events]
    # equal up to the float32 quantum of the top class's term (an ulp below 1 is 6e-8): logits
    # whose last bit differs (the product summed in another order) may move it by a step or two
    np.testing.assert_allclose([e[3] for e in got_events], ents, rtol=1e-5, atol=2.5e-7)
    assert min(e[3] for e in got_events) >= 0.0
    np.testing.assert_allclose(got.scores, scores, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(got.predictions, preds)
