"""OOD-detection metrics for scores where HIGHER = MORE IN-DISTRIBUTION.

Conventions (docs/METHOD.md section 8)
---------------------------------
* ``auroc``: probability that an ID sample scores above an OOD sample (ties count one half).
  It is the same whichever class is called positive.
* ``fpr95_id`` (MOS, MCM, NegLabel, CSP): ID is the positive class, scored by ``S``. Lower the
  threshold from the top until 95 % of ID samples are accepted (score >= threshold); the
  FPR is the fraction of OOD samples accepted as ID at that threshold.
* ``fpr95_ood`` (OpenOOD v1.5, used by the AdaNeg and ANTS code): OOD is the positive class,
  scored by ``-S``. Lower the threshold on ``-S`` until 95 % of OOD samples are caught; the
  FPR is the fraction of ID samples flagged as OOD at that threshold.
  Both equal ``fpr[argmax(tpr >= 0.95)]`` of a ROC curve. Which points the curve has is the
  ``roc_points`` option of :func:`fpr95_id`, :func:`fpr95_ood` and :func:`ood_metrics`:

  - ``"all"`` (the DEFAULT of both FPR95 metrics): every distinct threshold, i.e.
    scikit-learn's ``roc_curve(..., drop_intermediate=False)``;
  - ``"openood"``: the points of scikit-learn's ``roc_curve`` with its default
    ``drop_intermediate=True``, as OpenOOD computes it (the published AdaNeg / ANTS numbers):
    a point whose fp and tp counts both have a zero second difference with its neighbours
    (a collinear, "intermediate" point) is dropped, which on runs of alternating ID/OOD ties
    can move the first point with TPR >= 0.95 to a higher FPR. Implemented here (no
    scikit-learn at run time).

  AUROC and the AUPRs do not depend on it (dropped points are collinear).
* ``aupr_in``: area under the precision-recall curve with ID positive and score ``S``;
  ``aupr_out``: OOD positive, score ``-S``. As OpenOOD, the curve (with its final point at
  recall 0, precision 1) is integrated with the trapezoid rule.
* Metrics are fractions in [0, 1]; reports multiply by 100.

One ROC core (:func:`_binary_curve`: cumulative true / false positives at every distinct
threshold) gives AUROC (its trapezoids), both FPR95s (its points, ``roc_points``), both AUPRs
and the curve the report draws (:func:`roc_curve`).

The workflow's aggregation lives here too: :func:`stream_metrics` (one score table: the OOD
metrics and ID accuracy), then per dataset and seed, :func:`summary_rows` (each dataset, then
each split's unweighted average per seed, then mean and population std over the seeds, x100),
and :func:`headline_metrics`, the split averages the DVC metrics file keeps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "ANTS_VARIANTS",
    "HEADLINE_METRICS",
    "METRIC_KEYS",
    "METRIC_NAMES",
    "ROC_POINTS",
    "ROC_POINTS_TEXT",
    "accuracy",
    "fpr95_id",
    "fpr95_ood",
    "fpr_at_tpr",
    "headline_metrics",
    "ood_metrics",
    "roc_curve",
    "roc_points_of",
    "seed_summary",
    "split_average",
    "stream_metrics",
    "summary_rows",
    "variant_column",
]

METRIC_NAMES = ("auroc", "fpr95_id", "fpr95_ood", "aupr_in", "aupr_out")
#: the metrics of one stream in the workflow's tables: :data:`METRIC_NAMES` and ID accuracy
METRIC_KEYS = (*METRIC_NAMES, "acc")
#: ANTS's score variants, side by side in the workflow's ``{benchmark}_variants.csv``: the three
#: outputs and the authors' scripts' choice (``oracle``: far_only on far-OOD sets, near_only on
#: near-OOD sets)
ANTS_VARIANTS = ("ada", "far_only", "near_only", "oracle")
#: The headline numbers of the DVC metrics file (``results/metrics.json``), per benchmark, method
#: and split average: its key -> the metric-table column it is. FPR95 is OOD-positive
#: (``fpr95_ood``), the convention of OpenOOD v1.5 and of the AdaNeg and ANTS papers' numbers
#: (docs/METHOD.md section 8); every other figure stays in the metric tables.
HEADLINE_METRICS = {"auroc": "auroc", "fpr95": "fpr95_ood"}
#: Which ROC points the FPR95 metrics look at ("all" is the default; see the module doc).
ROC_POINTS = ("all", "openood")
#: how each ``roc_points`` value reads the FPR95s, for table legends and the report
ROC_POINTS_TEXT = {
    "all": "every ROC point (each distinct threshold)",
    "openood": "the points of scikit-learn's roc_curve(drop_intermediate=True), as OpenOOD's evaluator",
}


def _scores(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty: at least one score is needed")
    bad = ~np.isfinite(a)
    if bad.any():
        idx = np.flatnonzero(bad)
        raise ValueError(
            f"{name} contains {bad.sum()} NaN or infinite value(s), first at index {idx[0]} "
            f"(value {a[idx[0]]}); scores must be finite"
        )
    return a


def _binary_curve(pos: np.ndarray, neg: np.ndarray):
    """Cumulative true and false positive counts at every distinct threshold, high to low.

    The positive class is the one scored by ``pos``; a sample is predicted positive when its
    score is >= the threshold.
    """
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(pos.size, bool), np.zeros(neg.size, bool)])
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], is_pos[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps.astype(np.float64), fps.astype(np.float64)


def _check_roc_points(roc_points: str) -> None:
    if roc_points not in ROC_POINTS:
        raise ValueError(
            f"roc_points={roc_points!r} is not valid; valid values: {', '.join(ROC_POINTS)}"
        )


def roc_points_of(tps: np.ndarray, fps: np.ndarray, roc_points: str = "all"):
    """The ROC points kept from cumulative ``(tps, fps)`` at distinct thresholds (high to low).

    ``"all"`` keeps every one; ``"openood"`` drops, as scikit-learn's ``roc_curve`` with
    ``drop_intermediate=True``, each inner point where the second differences of both ``fps``
    and ``tps`` are zero (only when there are more than two points). The ``(0, 0)`` start is
    NOT included.
    """
    _check_roc_points(roc_points)
    tps, fps = np.asarray(tps), np.asarray(fps)
    if roc_points == "openood" and fps.size > 2:
        keep = np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True]
        tps, fps = tps[keep], fps[keep]
    return tps, fps


def _fpr_at_tpr(pos: np.ndarray, neg: np.ndarray, level: float, roc_points: str = "all") -> float:
    tps, fps = roc_points_of(*_binary_curve(pos, neg), roc_points)
    tpr = np.r_[0.0, tps / pos.size]
    fpr = np.r_[0.0, fps / neg.size]
    return float(fpr[np.argmax(tpr >= level)])


def roc_curve(id_scores, ood_scores, *, roc_points: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` of the ROC curve with ID positive (score ``S``: higher = more ID).

    ``fpr`` = fraction of OOD accepted as ID, ``tpr`` = fraction of ID accepted, from ``(0, 0)``
    to ``(1, 1)``, one point per distinct threshold (``roc_points="all"``) or OpenOOD's points
    (``"openood"``): the points :func:`fpr95_id` reads its value from.
    """
    _check_roc_points(roc_points)
    id_s, ood_s = _scores(id_scores, "id_scores"), _scores(ood_scores, "ood_scores")
    tps, fps = roc_points_of(*_binary_curve(id_s, ood_s), roc_points)
    return np.r_[0.0, fps / ood_s.size], np.r_[0.0, tps / id_s.size]


def _check_level(recall_level: float) -> None:
    if not 0.0 < recall_level <= 1.0:
        raise ValueError(f"recall_level must be in (0, 1], got {recall_level}")


def fpr_at_tpr(
    positive_scores, negative_scores, *, recall_level: float = 0.95, roc_points: str = "all"
) -> float:
    """FPR at the first ROC point with TPR >= ``recall_level``; positives score HIGHER.

    A sample is called positive when its score is >= the threshold. ``roc_points``: ``"all"``
    (default, every distinct threshold) or ``"openood"`` (scikit-learn's default
    ``drop_intermediate=True`` points, as OpenOOD).
    """
    _check_level(recall_level)
    _check_roc_points(roc_points)
    pos = _scores(positive_scores, "positive_scores")
    neg = _scores(negative_scores, "negative_scores")
    return _fpr_at_tpr(pos, neg, recall_level, roc_points)


def fpr95_id(
    id_scores, ood_scores, *, recall_level: float = 0.95, roc_points: str = "all"
) -> float:
    """``fpr95_id`` (ID positive, score ``S``): fraction of OOD accepted when 95 % of ID are.

    Scores: higher = more ID. ``roc_points`` defaults to ``"all"``.
    """
    _check_level(recall_level)
    _check_roc_points(roc_points)
    id_s, ood_s = _scores(id_scores, "id_scores"), _scores(ood_scores, "ood_scores")
    return _fpr_at_tpr(id_s, ood_s, recall_level, roc_points)


def fpr95_ood(
    id_scores, ood_scores, *, recall_level: float = 0.95, roc_points: str = "all"
) -> float:
    """``fpr95_ood`` (OOD positive, score ``-S``): fraction of ID flagged when 95 % of OOD are.

    Scores: higher = more ID. ``roc_points`` defaults to ``"all"``; ``"openood"`` gives
    OpenOOD v1.5's number exactly (``roc_curve(ood_indicator, -S)`` with its default
    ``drop_intermediate=True``).
    """
    _check_level(recall_level)
    _check_roc_points(roc_points)
    id_s, ood_s = _scores(id_scores, "id_scores"), _scores(ood_scores, "ood_scores")
    return _fpr_at_tpr(-ood_s, -id_s, recall_level, roc_points)


def _aupr(pos: np.ndarray, neg: np.ndarray) -> float:
    tps, fps = _binary_curve(pos, neg)
    precision = np.r_[1.0, tps / (tps + fps)]
    recall = np.r_[0.0, tps / pos.size]
    return float(abs(np.trapezoid(precision, recall)))


def _auroc(id_s: np.ndarray, ood_s: np.ndarray) -> float:
    """Area under the ROC curve of every distinct threshold (trapezoids; ties count one half).

    The area is summed in whole counts (``2 * area * n_id * n_ood`` is an integer, exact in
    float64 below 2**53) and divided once, so it equals the Mann-Whitney U statistic divided
    by ``n_id * n_ood`` to the last bit.
    """
    tps, fps = _binary_curve(id_s, ood_s)
    tp, fp = np.r_[0.0, tps], np.r_[0.0, fps]
    twice_area = float(np.sum(np.diff(fp) * (tp[1:] + tp[:-1])))
    return twice_area / (2.0 * id_s.size * ood_s.size)


def ood_metrics(
    id_scores, ood_scores, *, recall_level: float = 0.95, roc_points: str = "all"
) -> dict[str, float]:
    """AUROC, both FPR@95 conventions and both AUPRs for one (ID, OOD) pair.

    ``id_scores`` and ``ood_scores`` are 1-D arrays of finite scores where higher means more
    in-distribution. Returns fractions in [0, 1] under the keys of :data:`METRIC_NAMES`.
    ``roc_points`` (``"all"``, the default, or ``"openood"``) chooses the ROC points of both
    FPR95 metrics (see the module doc); the other metrics do not depend on it.
    """
    _check_level(recall_level)
    _check_roc_points(roc_points)
    id_s = _scores(id_scores, "id_scores")
    ood_s = _scores(ood_scores, "ood_scores")
    return {
        "auroc": _auroc(id_s, ood_s),
        "fpr95_id": _fpr_at_tpr(id_s, ood_s, recall_level, roc_points),
        "fpr95_ood": _fpr_at_tpr(-ood_s, -id_s, recall_level, roc_points),
        "aupr_in": _aupr(id_s, ood_s),
        "aupr_out": _aupr(-ood_s, -id_s),
    }


def accuracy(predictions, targets) -> float:
    """Top-1 accuracy: the fraction of ``predictions`` equal to ``targets`` (integer class ids)."""
    p = np.asarray(predictions)
    t = np.asarray(targets)
    if p.ndim != 1 or t.ndim != 1:
        raise ValueError(f"predictions and targets must be 1-D, got shapes {p.shape} and {t.shape}")
    if p.shape != t.shape:
        raise ValueError(f"predictions ({p.size}) and targets ({t.size}) differ in length")
    if p.size == 0:
        raise ValueError("predictions is empty: accuracy needs at least one sample")
    for name, a in (("predictions", p), ("targets", t)):
        if not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name} must hold integer class ids, got dtype {a.dtype}")
    return float(np.mean(p == t))


def split_average(per_dataset: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Unweighted mean over datasets of each metric (a split's "average" row).

    ``per_dataset`` maps a dataset name to its metric dict; every dataset must report the
    same metric names.
    """
    if not per_dataset:
        raise ValueError("split_average needs at least one dataset")
    names = None
    for ds, m in per_dataset.items():
        keys = set(m)
        if names is None:
            names, first = keys, ds
        elif keys != names:
            raise ValueError(
                f"dataset {ds!r} reports metrics {sorted(keys)} but {first!r} reports {sorted(names)}"
            )
    return {k: float(np.mean([per_dataset[ds][k] for ds in per_dataset])) for k in sorted(names)}


def seed_summary(
    values_by_seed: Mapping[int, Mapping[str, float]],
    keys: Sequence[str] | None = None,
    *,
    percent: bool = False,
) -> dict[str, float | int]:
    """Mean and population standard deviation (ddof=0) over seeds of each metric.

    ``values_by_seed`` maps a seed to its metric dict; ``keys`` are the metrics to summarise
    (default: every key of the first seed, in its order; each seed must have them all).
    Returns ``{key: mean, f"{key}_std": std, ..., "n_seeds": number of seeds}``; with
    ``percent`` the values are multiplied by 100 first (reports' convention).
    """
    if not values_by_seed:
        raise ValueError("seed_summary needs the metrics of at least one seed")
    seeds = list(values_by_seed)
    if keys is None:
        keys = list(values_by_seed[seeds[0]])
    elif isinstance(keys, str):
        keys = [keys]
    out: dict[str, float | int] = {}
    for key in keys:
        vals = []
        for seed in seeds:
            m = values_by_seed[seed]
            if key not in m:
                raise ValueError(f"seed {seed!r} has no metric {key!r}; it reports {sorted(m)}")
            v = float(m[key])
            if not np.isfinite(v):
                raise ValueError(f"seed {seed!r}: metric {key!r} is {v}, expected a finite number")
            vals.append(v)
        a = np.asarray(vals, dtype=np.float64) * (100.0 if percent else 1.0)
        out[key] = float(a.mean())
        out[f"{key}_std"] = float(a.std(ddof=0))
    out["n_seeds"] = len(seeds)
    return out


# -- the workflow's aggregation ----------------------------------------------------------------


def variant_column(variant: str, split: str) -> str:
    """The score-table column of an ANTS variant on a ``far`` / ``near`` OOD set (``v_{name}``;
    ``oracle`` is ``far_only`` on far sets and ``near_only`` on near sets)."""
    if variant == "oracle":
        variant = "far_only" if split == "far" else "near_only"
    return f"v_{variant}"


def stream_metrics(
    is_ood,
    scores,
    predictions,
    labels,
    *,
    recall_level: float = 0.95,
    roc_points: str = "all",
) -> dict[str, float]:
    """:func:`ood_metrics` of one stream's scores (higher = more ID) and the ID accuracy.

    ``is_ood`` marks the OOD samples; ``predictions`` and ``labels`` are read on the ID samples
    only. Returns fractions under :data:`METRIC_KEYS`.
    """
    is_ood = np.asarray(is_ood, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    out = ood_metrics(s[~is_ood], s[is_ood], recall_level=recall_level, roc_points=roc_points)
    out["acc"] = accuracy(np.asarray(predictions)[~is_ood], np.asarray(labels)[~is_ood])
    return out


def summary_rows(
    per: Mapping[tuple[str, str], Mapping[int, Mapping[str, float]]],
    splits: Sequence[tuple[str, str]],
    methods: Sequence[str],
    keys: Sequence[str] = METRIC_KEYS,
) -> list[tuple[str, str, str, dict[str, float | int]]]:
    """``(method, dataset, split, stats)`` of every method and dataset, then split average.

    ``per`` maps ``(method, dataset)`` to ``{seed: metrics}`` (fractions, as
    :func:`stream_metrics`); ``splits`` lists ``(split, dataset)`` in table order (far before
    near). Per method: each dataset of ``splits`` it has, then for ``far`` and ``near`` with at
    least one dataset, ``{split}_average``: per seed every member has, the unweighted mean over
    the members (:func:`split_average`). ``stats`` = :func:`seed_summary` of ``keys`` in percent
    (mean, population std, ``n_seeds``).
    """
    rows = []
    for method in methods:
        entries = [(ds, split, per[(method, ds)]) for split, ds in splits if (method, ds) in per]
        for split in ("far", "near"):
            members = [e for e in entries if e[1] == split]
            if not members:
                continue
            seeds = sorted(set.intersection(*(set(e[2]) for e in members)))
            averages = {s: split_average({e[0]: e[2][s] for e in members}) for s in seeds}
            entries.append((f"{split}_average", split, averages))
        for name, split, by_seed in entries:
            rows.append((method, name, split, seed_summary(by_seed, keys, percent=True)))
    return rows


def headline_metrics(rows) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """``{benchmark: {method: {split: {"auroc": .., "fpr95": ..}}}}``: the split-average rows
    (dataset ``{split}_average``) of metric-table rows, under :data:`HEADLINE_METRICS`' keys.

    ``rows``: mappings with ``benchmark``, ``method``, ``dataset``, ``split`` and the metric
    columns (the rows of :func:`summary_rows` as the workflow's metric CSVs hold them: one
    averaging formula, :func:`split_average`, for the tables and this). Means over the seeds,
    in percent; a split with one OOD set keeps its average (the paper's convention) and no
    dataset row is repeated. Splits absent from the rows are absent here.
    """
    out: dict = {}
    for r in rows:
        if r["dataset"] != f"{r['split']}_average":
            continue
        split = out.setdefault(r["benchmark"], {}).setdefault(r["method"], {})
        split[r["split"]] = {key: float(r[col]) for key, col in HEADLINE_METRICS.items()}
    return out
