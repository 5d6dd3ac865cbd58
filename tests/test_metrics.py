"""Metrics against scikit-learn and against small cases worked out by hand."""

import numpy as np
import pytest
from sklearn import metrics as skm

from ants.metrics import accuracy, ood_metrics, split_average


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
