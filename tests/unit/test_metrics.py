"""Metrics against scikit-learn and against small cases worked out by hand."""

import numpy as np
import pytest
from sklearn import metrics as skm

from ants.metrics import (
    accuracy,
    fpr95_id,
    fpr95_ood,
    fpr_at_tpr,
    headline_metrics,
    ood_metrics,
    roc_curve,
    roc_points_of,
    seed_summary,
    split_average,
    stream_metrics,
    summary_rows,
    variant_column,
)


def sklearn_reference(id_s, ood_s):
    """OpenOOD's recipe with scikit-learn, on the full ROC curve (no dropped points)."""
    y_id = np.r_[np.ones(len(id_s)), np.zeros(len(ood_s))]
    s = np.r_[id_s, ood_s]
    fpr_i, tpr_i, _ = skm.roc_curve(y_id, s, drop_intermediate=False)
    fpr_o, tpr_o, _ = skm.roc_curve(1 - y_id, -s, drop_intermediate=False)
    p_in, r_in, _ = skm.precision_recall_curve(y_id, s)
    p_out, r_out, _ = skm.precision_recall_curve(1 - y_id, -s)
    return {
        "auroc": skm.roc_auc_score(y_id, s),
        "fpr95_id": fpr_i[np.argmax(tpr_i >= 0.95)],
        "fpr95_ood": fpr_o[np.argmax(tpr_o >= 0.95)],
        "aupr_in": skm.auc(r_in, p_in),
        "aupr_out": skm.auc(r_out, p_out),
    }


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    id_s = rng.normal(1.0, 1.0, size=rng.integers(50, 400))
    ood_s = rng.normal(0.0, 1.5, size=rng.integers(50, 400))
    got, ref = ood_metrics(id_s, ood_s), sklearn_reference(id_s, ood_s)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], abs=1e-12), k


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_tie_heavy_scores(seed):
    rng = np.random.default_rng(100 + seed)
    id_s = rng.integers(0, 6, size=300).astype(float) / 5
    ood_s = rng.integers(0, 4, size=200).astype(float) / 5
    got, ref = ood_metrics(id_s, ood_s), sklearn_reference(id_s, ood_s)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], abs=1e-12), k


def test_fpr95_two_conventions_by_hand():
    # 20 ID scores 1..20, 20 OOD scores 0.5..19.5 step 1 (OOD shifted down by 0.5).
    id_s = np.arange(1, 21, dtype=float)
    ood_s = id_s - 0.5
    # fpr95_id: keep 95 % of ID = 19 samples -> threshold 2; OOD >= 2 are 2.5..19.5 = 18 of 20.
    # fpr95_ood: catch 95 % of OOD by -S: 19 OOD -> OOD <= 18.5 -> threshold S <= 18.5;
    # ID flagged = ID <= 18.5 = 1..18 = 18 of 20.
    m = ood_metrics(id_s, ood_s)
    assert m["fpr95_id"] == pytest.approx(18 / 20)
    assert m["fpr95_ood"] == pytest.approx(18 / 20)


def test_fpr95_conventions_differ_by_hand():
    # ID: 19 samples at 10 and one at 0. OOD: 10 samples at 5.
    id_s = np.r_[np.full(19, 10.0), 0.0]
    ood_s = np.full(10, 5.0)
    m = ood_metrics(id_s, ood_s)
    # Keeping 95 % of ID (19/20) only needs threshold 10: no OOD accepted.
    assert m["fpr95_id"] == 0.0
    # Catching 95 % of OOD (all at 5) flags every ID with S <= 5: the one at 0 -> 1/20.
    assert m["fpr95_ood"] == pytest.approx(1 / 20)
    # AUROC: 19 of 20 ID beat every OOD; the one at 0 loses to all -> 19/20.
    assert m["auroc"] == pytest.approx(0.95)


def test_perfect_and_inverted_separation():
    m = ood_metrics([3.0, 4.0], [1.0, 2.0])
    assert m == {"auroc": 1.0, "fpr95_id": 0.0, "fpr95_ood": 0.0, "aupr_in": 1.0, "aupr_out": 1.0}
    inv = ood_metrics([1.0, 2.0], [3.0, 4.0])
    assert inv["auroc"] == 0.0 and inv["fpr95_id"] == 1.0 and inv["fpr95_ood"] == 1.0


def test_all_tied_scores_give_half_auroc():
    m = ood_metrics(np.zeros(7), np.zeros(3))
    assert m["auroc"] == 0.5
    assert m["fpr95_id"] == 1.0 and m["fpr95_ood"] == 1.0


@pytest.mark.parametrize(
    "id_s, ood_s, match",
    [
        ([1.0, np.nan], [0.0], r"id_scores contains 1 NaN or infinite value\(s\), first at index 1"),
        ([1.0], [0.0, np.inf], r"ood_scores contains 1 NaN or infinite"),
        ([], [0.0], r"id_scores is empty"),
        ([1.0], [], r"ood_scores is empty"),
        ([[1.0]], [0.0], r"id_scores must be a 1-D array"),
    ],
)
def test_bad_scores_are_named(id_s, ood_s, match):
    with pytest.raises(ValueError, match=match):
        ood_metrics(id_s, ood_s)


def test_accuracy_and_errors():
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75
    with pytest.raises(ValueError, match=r"predictions \(3\) and targets \(2\) differ in length"):
        accuracy([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="predictions is empty"):
        accuracy([], [])
    with pytest.raises(TypeError, match="integer class ids"):
        accuracy([0.5], [1])


def test_split_average_is_unweighted_mean():
    per = {"a": {"auroc": 0.9, "fpr95_id": 0.2}, "b": {"auroc": 0.7, "fpr95_id": 0.4}}
    assert split_average(per) == pytest.approx({"auroc": 0.8, "fpr95_id": 0.3})
    with pytest.raises(ValueError, match=r"dataset 'b' reports metrics \['auroc'\] but 'a' reports"):
        split_average({"a": {"auroc": 1.0, "fpr95_id": 0.0}, "b": {"auroc": 1.0}})
    with pytest.raises(ValueError, match="at least one dataset"):
        split_average({})


# ------------------------------------------------------------------------------------------
# FPR95 as OpenOOD computes it (roc_curve with drop_intermediate=True)


def openood_reference(id_s, ood_s):
    """Both FPR95s from scikit-learn's roc_curve with its DEFAULT drop_intermediate=True."""
    y_id = np.r_[np.ones(len(id_s)), np.zeros(len(ood_s))]
    s = np.r_[id_s, ood_s]
    fpr_i, tpr_i, _ = skm.roc_curve(y_id, s)
    fpr_o, tpr_o, _ = skm.roc_curve(1 - y_id, -s)  # OpenOOD: OOD positive, score -conf
    return fpr_i[np.argmax(tpr_i >= 0.95)], fpr_o[np.argmax(tpr_o >= 0.95)]


@pytest.mark.parametrize("seed", range(8))
def test_openood_roc_points_match_sklearn_default_on_tie_heavy_scores(seed):
    rng = np.random.default_rng(200 + seed)
    n_id, n_ood = rng.integers(50, 400, size=2)
    levels = int(rng.integers(3, 12))
    id_s = rng.integers(0, levels, size=n_id).astype(float)
    ood_s = rng.integers(0, max(2, levels - 2), size=n_ood).astype(float)
    ref_id, ref_ood = openood_reference(id_s, ood_s)
    got = ood_metrics(id_s, ood_s, roc_points="openood")
    assert got["fpr95_id"] == ref_id and got["fpr95_ood"] == ref_ood
    assert fpr95_id(id_s, ood_s, roc_points="openood") == ref_id
    assert fpr95_ood(id_s, ood_s, roc_points="openood") == ref_ood
    # the other metrics do not depend on the points
    full = ood_metrics(id_s, ood_s)
    for k in ("auroc", "aupr_in", "aupr_out"):
        assert got[k] == full[k]


def test_openood_roc_points_match_sklearn_on_alternating_tie_runs():
    # runs of ID/OOD ties: many collinear ROC points for drop_intermediate to remove
    rng = np.random.default_rng(7)
    differ = 0
    for _ in range(20):
        levels = np.arange(40, dtype=float)
        id_s = np.repeat(levels, rng.integers(0, 4, size=40))
        ood_s = np.repeat(levels - rng.integers(0, 8), rng.integers(0, 4, size=40))
        if id_s.size == 0 or ood_s.size == 0:
            continue
        ref_id, ref_ood = openood_reference(id_s, ood_s)
        got = ood_metrics(id_s, ood_s, roc_points="openood")
        assert (got["fpr95_id"], got["fpr95_ood"]) == (ref_id, ref_ood)
        full = ood_metrics(id_s, ood_s)
        differ += (full["fpr95_id"] != ref_id) + (full["fpr95_ood"] != ref_ood)
    assert differ > 0  # the dropped points mattered somewhere


def alternating_ties_case():
    """OOD positive (score -S): 94 OOD alone at the top, then two levels each holding one
    OOD and one ID (collinear steps), then a level of 5 ID, then the rest."""
    ood_s = np.r_[np.full(94, -10.0), -9.0, -8.0, np.full(4, 0.0)]  # 100 OOD
    id_s = np.r_[-9.0, -8.0, np.full(5, -7.0), np.full(193, 10.0)]  # 200 ID
    return id_s, ood_s


def test_the_two_roc_point_sets_differ_on_alternating_ties():
    id_s, ood_s = alternating_ties_case()
    # every point: (fp, tp) = (0, 94), (1, 95), (2, 96), ... -> TPR 0.95 first at fp = 1
    assert fpr95_ood(id_s, ood_s) == pytest.approx(0.0050, abs=1e-15)
    # OpenOOD: (1, 95) is collinear with (0, 94) and (2, 96) and is dropped -> fp = 2
    assert fpr95_ood(id_s, ood_s, roc_points="openood") == pytest.approx(0.0100, abs=1e-15)
    assert openood_reference(id_s, ood_s)[1] == pytest.approx(0.0100, abs=1e-15)
    assert sklearn_reference(id_s, ood_s)["fpr95_ood"] == pytest.approx(0.0050, abs=1e-15)
    assert ood_metrics(id_s, ood_s, roc_points="openood")["fpr95_ood"] == pytest.approx(0.01)


def test_roc_points_of_by_hand_and_bad_values():
    tps = np.array([94, 95, 96, 96, 100])
    fps = np.array([0, 1, 2, 7, 200])
    k_tps, k_fps = roc_points_of(tps, fps, "openood")
    assert k_tps.tolist() == [94, 96, 96, 100] and k_fps.tolist() == [0, 2, 7, 200]
    assert roc_points_of(tps, fps)[0].tolist() == tps.tolist()
    # two points or fewer: nothing dropped
    assert roc_points_of(tps[:2], fps[:2], "openood")[0].tolist() == [94, 95]
    with pytest.raises(ValueError, match=r"roc_points='sklearn' is not valid; valid values: all, openood"):
        ood_metrics([1.0], [0.0], roc_points="sklearn")
    with pytest.raises(ValueError, match=r"roc_points='x' is not valid"):
        fpr95_ood([1.0], [0.0], roc_points="x")
    with pytest.raises(ValueError, match=r"recall_level must be in \(0, 1\], got 1.5"):
        fpr_at_tpr([1.0], [0.0], recall_level=1.5)


def test_fpr_at_tpr_is_the_generic_form():
    id_s, ood_s = alternating_ties_case()
    assert fpr_at_tpr(-ood_s, -id_s) == fpr95_ood(id_s, ood_s)
    assert fpr_at_tpr(id_s, ood_s, roc_points="openood") == fpr95_id(id_s, ood_s, roc_points="openood")
    with pytest.raises(ValueError, match=r"positive_scores contains 1 NaN"):
        fpr_at_tpr([np.nan], [0.0])


# ------------------------------------------------------------------------------------------
# mean / std over seeds


def test_seed_summary_by_hand():
    per_seed = {
        0: {"auroc": 0.90, "fpr95_id": 0.30},
        1: {"auroc": 0.80, "fpr95_id": 0.50},
        2: {"auroc": 0.70, "fpr95_id": 0.40},
    }
    got = seed_summary(per_seed, ["auroc", "fpr95_id"])
    # auroc: mean 0.8, population std sqrt(((0.1)^2 + 0 + (0.1)^2) / 3) = sqrt(0.02 / 3)
    assert got["auroc"] == pytest.approx(0.8)
    assert got["auroc_std"] == pytest.approx(np.sqrt(0.02 / 3))
    assert got["fpr95_id"] == pytest.approx(0.4)
    assert got["fpr95_id_std"] == pytest.approx(np.sqrt(0.02 / 3))
    assert got["n_seeds"] == 3
    assert list(got) == ["auroc", "auroc_std", "fpr95_id", "fpr95_id_std", "n_seeds"]
    pct = seed_summary(per_seed, ["auroc"], percent=True)
    assert pct == pytest.approx({"auroc": 80.0, "auroc_std": 100 * np.sqrt(0.02 / 3), "n_seeds": 3})
    # two seeds 0.2 and 0.6: mean 0.4, population std 0.2 (the sample std would be 0.283)
    two = seed_summary({5: {"acc": 0.2}, 9: {"acc": 0.6}})
    assert two == pytest.approx({"acc": 0.4, "acc_std": 0.2, "n_seeds": 2})
    one = seed_summary({0: {"acc": 0.25}}, "acc")
    assert one == {"acc": 0.25, "acc_std": 0.0, "n_seeds": 1}


def test_seed_summary_errors():
    with pytest.raises(ValueError, match="at least one seed"):
        seed_summary({}, ["auroc"])
    with pytest.raises(ValueError, match=r"seed 1 has no metric 'auroc'; it reports \['acc'\]"):
        seed_summary({0: {"auroc": 0.5}, 1: {"acc": 0.5}}, ["auroc"])
    with pytest.raises(ValueError, match=r"seed 0: metric 'auroc' is nan, expected a finite number"):
        seed_summary({0: {"auroc": float("nan")}}, ["auroc"])


# ------------------------------------------------------------------------------------------
# the one ROC core: the curve, AUROC


@pytest.mark.parametrize("seed", range(6))
def test_roc_curve_is_sklearns_with_either_point_set(seed):
    rng = np.random.default_rng(300 + seed)
    levels = int(rng.integers(3, 30))
    id_s = rng.integers(0, levels, size=int(rng.integers(20, 300))).astype(float)
    ood_s = rng.integers(0, levels, size=int(rng.integers(20, 300))).astype(float) - 2
    y = np.r_[np.ones(id_s.size), np.zeros(ood_s.size)]
    for points, drop in (("all", False), ("openood", True)):
        fpr, tpr = roc_curve(id_s, ood_s, roc_points=points)
        want_fpr, want_tpr, _ = skm.roc_curve(y, np.r_[id_s, ood_s], drop_intermediate=drop)
        np.testing.assert_allclose(fpr, want_fpr, rtol=0, atol=1e-15)
        np.testing.assert_allclose(tpr, want_tpr, rtol=0, atol=1e-15)
        # the FPR95 columns read off this very curve
        assert fpr[np.argmax(tpr >= 0.95)] == fpr95_id(id_s, ood_s, roc_points=points)


def test_auroc_is_the_exact_mann_whitney_statistic():
    """The trapezoids of the ROC curve, summed in whole counts: U / (n_id n_ood) to the last bit."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        id_s = np.round(rng.normal(0.3, 1, size=int(rng.integers(1, 200))), int(rng.integers(0, 3)))
        ood_s = np.round(rng.normal(0.0, 1, size=int(rng.integers(1, 200))), int(rng.integers(0, 3)))
        greater = (id_s[:, None] > ood_s[None, :]).sum()
        ties = (id_s[:, None] == ood_s[None, :]).sum()
        u2 = 2 * int(greater) + int(ties)  # twice U, an integer
        assert ood_metrics(id_s, ood_s)["auroc"] == u2 / (2 * id_s.size * ood_s.size)


# ------------------------------------------------------------------------------------------
# the workflow's aggregation: stream -> seeds -> split averages -> rows


def test_stream_metrics_reads_accuracy_on_id_samples_only():
    is_ood = np.array([False, False, True, False, True])
    scores = np.array([0.9, 0.8, 0.1, 0.7, 0.85])
    got = stream_metrics(is_ood, scores, [1, 0, 5, 2, 5], [1, 1, -1, 2, -1])
    assert got["acc"] == pytest.approx(2 / 3)
    assert got["auroc"] == pytest.approx(4 / 6)  # 0.85 beats 0.8 and 0.7 only
    assert {k: got[k] for k in got if k != "acc"} == ood_metrics(scores[~is_ood], scores[is_ood])


def test_summary_rows_by_hand():
    per = {
        ("m", "a"): {0: {"auroc": 0.9}, 1: {"auroc": 0.7}},
        ("m", "b"): {0: {"auroc": 0.5}, 1: {"auroc": 0.3}, 2: {"auroc": 0.1}},
        ("m", "n"): {0: {"auroc": 0.6}},
        ("other", "a"): {0: {"auroc": 1.0}},
    }
    rows = summary_rows(per, [("far", "a"), ("far", "b"), ("near", "n")], ["m"], keys=["auroc"])
    got = {(ds, split): stats for _, ds, split, stats in rows}
    assert [r[1] for r in rows] == ["a", "b", "n", "far_average", "near_average"]
    assert got[("a", "far")] == pytest.approx({"auroc": 80.0, "auroc_std": 10.0, "n_seeds": 2})
    assert got[("b", "far")] == pytest.approx({"auroc": 30.0, "auroc_std": 100 * np.sqrt(0.08 / 3), "n_seeds": 3})
    # far average per seed both sets have (0, 1): (0.9 + 0.5) / 2 = 0.7, (0.7 + 0.3) / 2 = 0.5
    assert got[("far_average", "far")] == pytest.approx({"auroc": 60.0, "auroc_std": 10.0, "n_seeds": 2})
    # one near set: its average is itself
    assert got[("near_average", "near")] == pytest.approx({"auroc": 60.0, "auroc_std": 0.0, "n_seeds": 1})
    assert variant_column("oracle", "far") == "v_far_only" and variant_column("oracle", "near") == "v_near_only"
    assert variant_column("ada", "near") == "v_ada"


def test_headline_metrics_keep_the_split_averages_auroc_and_ood_positive_fpr95():
    def row(bench, method, dataset, split, auroc, fpr_id, fpr_ood):
        return {"benchmark": bench, "method": method, "label": method.upper(), "dataset": dataset,
                "split": split, "auroc": auroc, "auroc_std": 1.0, "fpr95_id": fpr_id,
                "fpr95_id_std": 2.0, "fpr95_ood": fpr_ood, "fpr95_ood_std": 3.0, "acc": 50.0, "n_seeds": 2}

    rows = [row("b", "m", "a", "far", 70.0, 40.0, 45.0), row("b", "m", "c", "far", 80.0, 30.0, 35.0),
            row("b", "m", "far_average", "far", 75.0, 35.0, 40.0),
            row("b", "m", "n", "near", 60.0, 50.0, 55.0), row("b", "m", "near_average", "near", 60.0, 50.0, 55.0),
            row("o", "m", "x", "far", 1.0, 2.0, 3.0), row("o", "m", "far_average", "far", 1.0, 2.0, 3.0)]
    assert headline_metrics(rows) == {
        "b": {"m": {"far": {"auroc": 75.0, "fpr95": 40.0}, "near": {"auroc": 60.0, "fpr95": 55.0}}},
        "o": {"m": {"far": {"auroc": 1.0, "fpr95": 3.0}}},
    }
    assert headline_metrics(rows[:2]) == {}  # no average row: nothing to headline
