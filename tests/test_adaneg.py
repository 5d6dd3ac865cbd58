"""AdaNeg (METHOD.md section 5) against a direct, slot-by-slot re-implementation."""

import numpy as np
import pytest
import torch

from ants.methods import run_method
from ants.methods.adaneg import AdaNegConfig, AdaNegMemory, adaneg_config, entropy, run_adaneg
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


def direct_adaneg(x, idt, neg, batch_size, cfg):
    """AdaNeg written out literally: per-label slot lists, explicit proxy vectors per sample."""
    k = len(idt)
    text = np.concatenate([idt, neg]).astype(np.float64)
    memory = [[] for _ in text]  # per label: [feature, entropy] in slot order
    hi = cfg.threshold + cfg.gap * (1 - cfg.threshold)
    lo = cfg.threshold - cfg.gap * cfg.threshold
    scores, preds, actions = [], [], {"insert": 0, "replace": 0, "skip": 0}
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        s_nl = negative_label(xb, idt, neg, n_groups=cfg.n_groups, tau=cfg.tau)
        logits = xb.astype(np.float64) @ text.T / cfg.tau
        for side in ("id", "neg"):
            for i in range(len(xb)):
                if side == "id" and s_nl[i] > hi:
                    part, offset = logits[i, :k], 0
                elif side == "neg" and s_nl[i] < lo:
                    part, offset = logits[i, k:], k
                else:
                    continue
                label = offset + int(np.argmax(part))
                p = _softmax(part)
                ent = float(-(p * np.log(p + 1e-8)).sum())
                slots = memory[label]
                if len(slots) < cfg.memory_length:
                    slots.append([xb[i], ent])
                    actions["insert"] += 1
                else:
                    worst = int(np.argmax([e for _, e in slots]))
                    if ent < slots[worst][1]:
                        slots[worst] = [xb[i], ent]
                        actions["replace"] += 1
                    else:
                        actions["skip"] += 1
        for i, v in enumerate(xb.astype(np.float64)):
            proxies = []
            for c in range(len(text)):
                entries = [text[c]] + [f.astype(np.float64) for f, _ in memory[c]]
                if cfg.proxy == "sample":
                    w = [np.exp(-cfg.beta * (1 - v @ m)) for m in entries]
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
