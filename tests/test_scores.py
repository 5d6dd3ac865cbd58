"""Scores against direct, unvectorised computations."""

import numpy as np
import pytest
import torch

from ants.scores import group_layout, group_lse, mcm, mean_id_mass, negative_label, predict


def unit_rows(rng, n, d):
    x = rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def naive_id_mass(v, id_t, neg_t, tau):
    """Plain softmax over [ID, negatives] in float64, one image at a time."""
    logits = np.r_[id_t @ v, neg_t @ v].astype(np.float64) / tau
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return p[: len(id_t)].sum()


@pytest.fixture
def world():
    rng = np.random.default_rng(0)
    return unit_rows(rng, 13, 16), unit_rows(rng, 7, 16), unit_rows(rng, 23, 16)


def test_plain_score_matches_naive_softmax(world):
    img, idt, neg = world
    got = negative_label(img, idt, neg, tau=0.05)
    want = [naive_id_mass(v, idt, neg, 0.05) for v in img]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert got.dtype == np.float32 and isinstance(got, np.ndarray)


def test_grouped_score_matches_per_group_loop(world):
    img, idt, neg = world
    # 23 negatives, group size 5 -> G = 4, drop the last 3, permute 20 with seed 0.
    layout = group_layout(23, group_size=5)
    assert layout.shape == (4, 5)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(layout.numpy().ravel(), perm)
    got = negative_label(img, idt, neg, tau=0.01, group_size=5)
    for i, v in enumerate(img):
        per_group = [naive_id_mass(v, idt, neg[perm.reshape(4, 5)[g]], 0.01) for g in range(4)]
        assert got[i] == pytest.approx(np.mean(per_group), rel=1e-5, abs=1e-7)


def test_group_count_and_group_size_parameterisations(world):
    img, idt, neg = world
    # By count: G = 3 over 23 -> drop last 2, 3 groups of 7.
    assert group_layout(23, n_groups=3).shape == (3, 7)
    # By size: s = 10 over 23 -> G = 2, groups of 11 (a group may hold more than s).
    assert group_layout(23, group_size=10).shape == (2, 11)
    # s larger than the bank -> G = 1 -> the plain score (a permutation of all entries: the
    # sums run in another order, which float32 at logits up to 1/tau = 100 leaves equal to ~1e-5)
    np.testing.assert_allclose(
        negative_label(img, idt, neg, group_size=100), negative_label(img, idt, neg), rtol=1e-5
    )
    # The dropped negatives are the LAST ones in stored order.
    assert sorted(group_layout(23, n_groups=3).ravel().tolist()) == list(range(21))


def test_explicit_groups_and_seed(world):
    img, idt, neg = world
    groups = np.array([[0, 1, 2], [5, 6, 7]])
    got = negative_label(img, idt, neg, groups=groups)
    want = [np.mean([naive_id_mass(v, idt, neg[g], 0.01) for g in groups]) for v in img]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    a = negative_label(img, idt, neg, group_size=5, seed=0)
    b = negative_label(img, idt, neg, group_size=5, seed=0)
    c = negative_label(img, idt, neg, group_size=5, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_chunking_does_not_change_scores(world):
    img, idt, neg = world
    full = negative_label(img, idt, neg, group_size=5, chunk_size=4096)
    # BLAS may block a 3-row product differently: equal up to float32 rounding.
    np.testing.assert_allclose(full, negative_label(img, idt, neg, group_size=5, chunk_size=3), rtol=1e-6, atol=1e-7)


def test_torch_in_torch_out(world):
    img, idt, neg = world
    out = negative_label(torch.from_numpy(img), idt, neg)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), negative_label(img, idt, neg), rtol=0, atol=0)


def test_stable_with_cosines_near_plus_minus_one():
    # Image identical to an ID text (cos = 1) and exactly opposite to every negative (cos = -1):
    # with tau = 0.01 the logits are +-100, e^200 overflows float32 if done naively.
    d = 8
    v = np.zeros((2, d), np.float32)
    v[0, 0] = 1.0
    v[1, 1] = 1.0
    idt = np.eye(d, dtype=np.float32)[:1]  # one ID class along e0
    neg = -np.eye(d, dtype=np.float32)[:1].repeat(50, axis=0)  # all along -e0
    s = negative_label(v, idt, neg, tau=0.01)
    assert np.all(np.isfinite(s))
    assert s[0] == pytest.approx(1.0)
    # v1 is orthogonal to both: logits 0 -> mass 1 / (1 + 50).
    assert s[1] == pytest.approx(1 / 51, rel=1e-6)
    # The reverse: the image matches the negatives -> ID mass e^-100 / (e^-100 + 50 e^100) ~ 0.
    s2 = negative_label(-v[:1], idt, neg, tau=0.01)
    assert np.isfinite(s2[0]) and 0.0 <= s2[0] < 1e-30


def test_mean_id_mass_over_group_lse_matches_float64_loop():
    """``mean_id_mass(lse_id, group_lse(...))`` is the mean over groups of the ID softmax mass."""
    rng = np.random.default_rng(3)
    lid = torch.from_numpy(rng.normal(scale=3.0, size=(5, 4)).astype(np.float32))
    lneg = torch.from_numpy(rng.normal(scale=3.0, size=(5, 9)).astype(np.float32))
    layout = torch.tensor([[0, 4, 8], [1, 2, 3], [5, 6, 7]])
    got = mean_id_mass(torch.logsumexp(lid, dim=1), group_lse(lneg, layout))
    assert got.shape == (5,)
    a, b = lid.double().numpy(), lneg.double().numpy()
    for i in range(5):
        masses = [np.exp(a[i]).sum() / (np.exp(a[i]).sum() + np.exp(b[i, g]).sum()) for g in layout.numpy()]
        assert got[i].item() == pytest.approx(np.mean(masses), rel=1e-6)
    # Hand-checked case: group 0 has 2 / (2 + 2) = 0.5, group 1 has 2 / (2 + 6) = 0.25.
    lse_id = torch.logsumexp(torch.tensor([[0.0, 0.0]]), dim=1)
    two_groups = torch.tensor([[0.0, 0.0, np.log(3.0), np.log(3.0)]])
    per_group = group_lse(two_groups, torch.tensor([[0, 1], [2, 3]]))
    np.testing.assert_allclose(per_group.numpy(), [[np.log(2.0), np.log(6.0)]], rtol=1e-6)
    assert mean_id_mass(lse_id, per_group).item() == pytest.approx(0.375, rel=1e-6)
    # One group (layout=None) with a multiplicity: each entry counts T = 3 times.
    one = group_lse(two_groups[:, :2], log_multiplicity=np.log(3.0))
    assert mean_id_mass(lse_id, one).item() == pytest.approx(2 / (2 + 6), rel=1e-6)


def test_mean_id_mass_label_major_group_axis_matches_image_major():
    """``group_axis=0`` (AdaNeg's label-major ``(G, n)`` blocks) gives the ``(n, G)`` result."""
    rng = np.random.default_rng(4)
    lse_id = torch.from_numpy(rng.normal(scale=5.0, size=7).astype(np.float32))
    lse_neg = torch.from_numpy(rng.normal(scale=5.0, size=(7, 5)).astype(np.float32))
    image_major = mean_id_mass(lse_id, lse_neg)
    label_major = mean_id_mass(lse_id, lse_neg.T.contiguous(), group_axis=0)
    np.testing.assert_allclose(label_major.numpy(), image_major.numpy(), rtol=1e-6)
    want = torch.sigmoid(lse_id[:, None].double() - lse_neg.double()).mean(dim=1)
    np.testing.assert_allclose(label_major.numpy(), want.numpy(), rtol=1e-6)
    one_group = mean_id_mass(lse_id, lse_neg[:, 0], group_axis=0)
    np.testing.assert_array_equal(one_group.numpy(), torch.sigmoid(lse_id - lse_neg[:, 0]).numpy())


def test_mcm_matches_naive_and_temperature(world):
    img, idt, _ = world
    for t in (1.0, 0.01):
        got = mcm(img, idt, temperature=t)
        for i, v in enumerate(img):
            z = (idt @ v).astype(np.float64) / t
            p = np.exp(z - z.max())
            assert got[i] == pytest.approx(p.max() / p.sum(), rel=1e-5)
    # with T = 1 and unit vectors the softmax over 7 labels is nearly flat
    assert mcm(img, idt, temperature=1.0).max() < 0.3


def test_predict_is_argmax_of_id_cosines(world):
    img, idt, _ = world
    np.testing.assert_array_equal(predict(img, idt), (img @ idt.T).argmax(1))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tau": 0.0}, "tau must be a positive finite number"),
        ({"n_groups": 2, "group_size": 3}, "exactly one of n_groups or group_size"),
        ({"n_groups": 99}, r"n_groups=99 exceeds the number of negatives \(23\)"),
        ({"group_size": 0}, "group_size must be a positive integer"),
        ({"groups": np.array([[0, 30]])}, "indexes outside the negative bank of 23 entries"),
        ({"groups": np.array([[0, 1]]), "n_groups": 2}, "either groups or n_groups/group_size"),
    ],
)
def test_bad_arguments(world, kwargs, match):
    img, idt, neg = world
    with pytest.raises(ValueError, match=match):
        negative_label(img, idt, neg, **kwargs)


def test_bad_features(world):
    img, idt, neg = world
    with pytest.raises(ValueError, match=r"feature dimension mismatch: image features have d=16, negative_features has d=8"):
        negative_label(img, idt, neg[:, :8])
    with pytest.raises(ValueError, match="image_features contains NaN"):
        bad = img.copy()
        bad[0, 0] = np.nan
        negative_label(bad, idt, neg)
    with pytest.raises(ValueError, match="negative_features is empty"):
        negative_label(img, idt, neg[:0])
    with pytest.raises(ValueError, match=r"image_features must be a 2-D array"):
        negative_label(img[0], idt, neg)


def test_negatives_far_above_the_id_maximum_are_exact(world):
    """The negatives' exponentials are shifted by the ID maximum; an image whose negatives
    exceed it by more than float32's exp range (cos 1 against cos -1 at tau = 0.01) is redone
    with its own maxima: still the float64 loop's value, never NaN."""
    from ants.scores import negative_label_parts

    img, idt, neg = world
    v = img[0] / np.linalg.norm(img[0])
    idt = np.stack([-v, -v])  # every ID label opposite the image: ID logits -100
    neg = np.concatenate([np.stack([v] * 5), neg[5:]])  # 5 negatives on it: logits +100
    parts = negative_label_parts(np.stack([v, img[1]]), idt, neg, tau=0.01, group_size=5, chunk_size=1)
    layout = group_layout(len(neg), group_size=5).numpy()
    for i, x in enumerate([v, img[1]]):
        want = np.mean([naive_id_mass(x, idt, neg[g], 0.01) for g in layout])
        assert np.isfinite(parts.scores[i]) and parts.scores[i] == pytest.approx(want, rel=1e-5, abs=1e-7)
    assert parts.scores[0] < 0.9  # the group holding the 5 copies of v has ID mass ~ 0
