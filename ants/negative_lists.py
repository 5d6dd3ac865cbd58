"""Published negative-label lists as input, and comparing two negative sets.

NegLabel's authors publish the 10,000 ImageNet-1k negatives they mined
(``selected_neg_labels/selected_neg_labels_in1k_10k.txt`` in https://github.com/XueJiang16/NegLabel,
docs/METHOD.md section 3): one entry per line, each the full prompted text the features were
encoded from -- nouns as ``the nice {word}``, adjectives as ``This is a {word} photo``, no
index, no score; 10,499 lines (8,578 nouns, then 1,921 adjectives: the lowest 15 % of each
pool). A researcher who wants to run with exactly those (no mining variance), or to check that
NegMining reproduces them, gives such a file as ``mining.source: file``.

Two formats are read (:func:`read_negative_list`), decided for the whole file:

* ``neglabel``: EVERY line is a prompted text of one of :data:`NEGLABEL_TEMPLATES`; the prompt
  is stripped, the word kept with its kind (``noun`` / ``adj``) and its template, so the
  features are those of exactly the text in the file;
* ``plain``: NO line is prompted: one label per line, all nouns, encoded with
  :data:`PLAIN_TEMPLATE` ("The nice {}.", the paper's prompt).

A file mixing both is refused, naming the first lines of the minority form. Blank lines are
skipped. The order of the file is kept (the grouped score drops the LAST ``M mod G`` entries).
What the file holds is reported, never silently fixed: the count, duplicate entries (kept, as
the file has them) and labels equal to an ID class name (case-insensitive; kept too).
:func:`negatives_from_list` turns a list into :class:`ants.mining.MinedNegatives` (features,
the percentile statistic against the ID labels, and the report and the file's SHA-256 in its
metadata: the provenance of the run).

:func:`compare_negative_sets` compares two sets (a mined-negatives Parquet file or a text file
in either format, :func:`negative_labels_of`): counts, overlap, Jaccard index, per kind, and
samples of the labels only in one of them (``ants negatives compare A B``).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NEGLABEL_TEMPLATES",
    "PLAIN_TEMPLATE",
    "NegativeList",
    "NegativeListError",
    "compare_negative_sets",
    "format_comparison",
    "negative_labels_of",
    "negatives_from_list",
    "read_negative_list",
]

#: NegLabel's published prompts (``prompt_templates[85]`` for nouns; the adjective template of
#: its ``multi_modal.py``), each with the variant with a final period, by kind.
NEGLABEL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "noun": ("the nice {}", "The nice {}."),
    "adj": ("This is a {} photo", "This is a {} photo."),
}
#: The template of a plain list (one label per line).
PLAIN_TEMPLATE = "The nice {}."
#: how many examples a report quotes
EXAMPLES = 5


class NegativeListError(ValueError):
    """A negatives text file cannot be used; the message names the file and the lines."""


def _pattern(template: str) -> re.Pattern:
    head, tail = template.split("{}")
    return re.compile(re.escape(head) + r"(.+?)" + re.escape(tail) + r"\Z")


_PATTERNS = [(kind, t, _pattern(t)) for kind, ts in NEGLABEL_TEMPLATES.items() for t in ts]


@dataclass(frozen=True)
class NegativeList:
    """The entries of a negatives text file, in file order.

    ``labels`` (the words, prompt stripped), ``kinds`` (``noun`` / ``adj``), ``templates`` (the
    template each entry was written with; ``template.format(label)`` is the line), ``format``
    (``neglabel`` / ``plain``), ``lines`` (the file line number of each entry), and the report:
    ``duplicates`` (``(kind, label)`` seen before, with its lines) and ``sha256`` of the file.
    """

    path: str
    labels: list[str]
    kinds: list[str]
    templates: list[str]
    format: str
    lines: list[int]
    sha256: str
    duplicates: list[tuple[str, str, list[int]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def id_overlap(self, id_classnames: Sequence[str]) -> list[str]:
        """The labels equal to an ID class name (case-insensitive, stripped), in file order."""
        ids = {n.strip().casefold() for n in id_classnames}
        return list(dict.fromkeys(lab for lab in self.labels if lab.strip().casefold() in ids))

    def report(self, id_classnames: Sequence[str] | None = None) -> dict[str, Any]:
        """What the file holds: counts per kind, templates, duplicates and ID overlap."""
        out: dict[str, Any] = {
            "file": self.path,
            "file_sha256": self.sha256,
            "format": self.format,
            "n_entries": len(self),
            "counts": dict(Counter(self.kinds)),
            "templates": dict(
                sorted({k: t for k, t in zip(self.kinds, self.templates, strict=True)}.items())
            ),
            "n_duplicates": len(self.duplicates),
            "duplicate_examples": [
                {"kind": k, "label": lab, "lines": ls} for k, lab, ls in self.duplicates[:EXAMPLES]
            ],
        }
        if id_classnames is not None:
            overlap = self.id_overlap(id_classnames)
            out["n_id_overlap"] = len(overlap)
            out["id_overlap_examples"] = overlap[:EXAMPLES]
        return out


def read_negative_list(path: str | os.PathLike) -> NegativeList:
    """Read a negatives text file (the module docstring gives the two formats).

    Raises :class:`NegativeListError` naming the file for: no entry at all; a file mixing
    prompted (NegLabel) and plain lines; a kind written with two different templates; an
    entry whose word is empty. A missing file is a ``FileNotFoundError`` naming it.
    """
    from ants._io import file_digest

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"negatives file {path} does not exist (mining.file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise NegativeListError(f"{path}: not UTF-8 text ({exc})") from None
    entries: list[tuple[int, str]] = [
        (i, line.strip()) for i, line in enumerate(text.splitlines(), start=1) if line.strip()
    ]
    if not entries:
        raise NegativeListError(f"{path}: no negative label in the file (it is empty)")
    parsed: list[tuple[int, str, str, str] | None] = []
    for i, line in entries:
        hit = None
        for kind, template, pattern in _PATTERNS:
            m = pattern.match(line)
            if m:
                hit = (i, m[1].strip(), kind, template)
                break
        parsed.append(hit)
    prompted = [p for p in parsed if p is not None]
    if prompted and len(prompted) < len(entries):
        plain = [i for (i, _), p in zip(entries, parsed, strict=True) if p is None]
        raise NegativeListError(
            f"{path}: {len(prompted)} line(s) are NegLabel prompts ('the nice X' / 'This is a X "
            f"photo') but {len(plain)} are not (lines {', '.join(map(str, plain[:EXAMPLES]))}"
            f"{', ...' if len(plain) > EXAMPLES else ''}); give one format for the whole file"
        )
    if prompted:
        fmt = "neglabel"
        rows = prompted
    else:
        fmt = "plain"
        rows = [(i, line, "noun", PLAIN_TEMPLATE) for i, line in entries]
    empty = [i for i, lab, _, _ in rows if not lab]
    if empty:
        raise NegativeListError(f"{path}: empty label at line(s) {', '.join(map(str, empty))}")
    by_kind: dict[str, set[str]] = {}
    for _, _, kind, template in rows:
        by_kind.setdefault(kind, set()).add(template)
    mixed = {k: sorted(t) for k, t in by_kind.items() if len(t) > 1}
    if mixed:
        kind, ts = next(iter(mixed.items()))
        raise NegativeListError(
            f"{path}: the {kind}s are written with {len(ts)} templates ({', '.join(map(repr, ts))}); "
            "one template per kind is expected"
        )
    seen: dict[tuple[str, str], list[int]] = {}
    for i, lab, kind, _ in rows:
        seen.setdefault((kind, lab), []).append(i)
    duplicates = [(k, lab, ls) for (k, lab), ls in seen.items() if len(ls) > 1]
    return NegativeList(
        path=str(path),
        labels=[r[1] for r in rows],
        kinds=[r[2] for r in rows],
        templates=[r[3] for r in rows],
        format=fmt,
        lines=[r[0] for r in rows],
        sha256=file_digest(path),
        duplicates=duplicates,
    )


def negatives_from_list(
    negatives: NegativeList,
    id_classnames: Sequence[str],
    encode_text: Callable[[list[str], str], np.ndarray],
    *,
    percentile: float = 95.0,
    percentile_method: str = "inverted_cdf",
    id_template: str | None = None,
    batch_size: int = 4096,
):
    """:class:`ants.mining.MinedNegatives` of a list read by :func:`read_negative_list`.

    Every entry is encoded with its own template (the text of its line); the ID labels with
    ``id_template`` (default: the nouns' template, as NegLabel encodes ID and nouns alike).
    ``stat`` / ``max_id_cos`` are the percentile statistic and the maximum cosine to the ID
    labels (:func:`ants.mining.id_similarity_stats`), for inspection; the order is the file's.
    ``meta`` holds ``source: file`` and :meth:`NegativeList.report`.
    """
    from ants.mining import MinedNegatives, _encode_checked, _sha256_names, id_similarity_stats

    names = [str(n) for n in id_classnames]
    if not names:
        raise ValueError("id_classnames is empty: at least one ID class name is needed")
    templates = dict(
        sorted({k: t for k, t in zip(negatives.kinds, negatives.templates, strict=True)}.items())
    )
    id_template = id_template or templates.get("noun") or PLAIN_TEMPLATE
    id_feats = _encode_checked(encode_text, names, id_template, None, "ID class")
    d = id_feats.shape[1]
    feats = np.empty((len(negatives), d), dtype=np.float32)
    for template in dict.fromkeys(negatives.templates):
        idx = [i for i, t in enumerate(negatives.templates) if t == template]
        for start in range(0, len(idx), batch_size):
            part = idx[start : start + batch_size]
            feats[part] = _encode_checked(
                encode_text, [negatives.labels[i] for i in part], template, d, "negative"
            )
    stat, mx = id_similarity_stats(feats, id_feats, percentile, percentile_method)
    table = pd.DataFrame(
        {"label": negatives.labels, "kind": negatives.kinds, "stat": stat, "max_id_cos": mx}
    )
    report = negatives.report(names)
    meta = {
        "source": "file",
        **report,
        "templates": {"id": id_template, **templates},
        "percentile": float(percentile),
        "percentile_method": percentile_method,
        "n_id_classes": len(names),
        "id_classnames_sha256": _sha256_names(names),
        "embedding_dim": int(d),
    }
    return MinedNegatives(table, feats, meta)


def negative_labels_of(path: str | os.PathLike) -> pd.DataFrame:
    """``label``, ``kind`` of a negative set: a mined-negatives Parquet file
    (:meth:`ants.mining.MinedNegatives.save`) or a text file (:func:`read_negative_list`)."""
    path = Path(path)
    if path.suffix == ".parquet":
        from ants.mining import MinedNegatives

        mined = MinedNegatives.load(path)
        kinds = ["adj" if k == "csp" else k for k in mined.kinds]
        return pd.DataFrame({"label": mined.labels, "kind": mined.kinds, "pool": kinds})
    lst = read_negative_list(path)
    return pd.DataFrame({"label": lst.labels, "kind": lst.kinds, "pool": lst.kinds})


def _key(label: str) -> str:
    return " ".join(str(label).split()).casefold()


def compare_negative_sets(a: pd.DataFrame, b: pd.DataFrame, *, examples: int = 10) -> dict:
    """Overlap of two negative sets (:func:`negative_labels_of`), labels compared
    case-insensitively with whitespace collapsed.

    Returns ``n_a``, ``n_b`` (distinct labels), ``common``, ``only_a``, ``only_b``, ``jaccard``
    (common / union), ``per_kind`` (the same counts per kind, a label's kind as each set has
    it: noun / adj, CSP phrases counted with adjectives) and the first ``examples`` labels only
    in A and only in B, in each set's own order."""
    out: dict[str, Any] = {}

    def keyed(frame):
        return dict.fromkeys(_key(x) for x in frame["label"])

    ka, kb = keyed(a), keyed(b)
    common = [k for k in ka if k in kb]
    union = len(ka) + len(kb) - len(common)
    out.update(
        n_a=len(ka),
        n_b=len(kb),
        common=len(common),
        only_a=len(ka) - len(common),
        only_b=len(kb) - len(common),
        jaccard=len(common) / union if union else 1.0,
    )
    per_kind = {}
    for pool in sorted(set(a["pool"]) | set(b["pool"])):
        pa = keyed(a[a["pool"] == pool])
        pb = keyed(b[b["pool"] == pool])
        both = sum(1 for k in pa if k in pb)
        per_kind[pool] = {"n_a": len(pa), "n_b": len(pb), "common": both}
    out["per_kind"] = per_kind
    first_a = {_key(x): x for x in a["label"][::-1]}
    first_b = {_key(x): x for x in b["label"][::-1]}
    out["examples_only_a"] = [first_a[k] for k in ka if k not in kb][:examples]
    out["examples_only_b"] = [first_b[k] for k in kb if k not in ka][:examples]
    return out


def format_comparison(result: dict, name_a: str, name_b: str) -> list[str]:
    """The lines ``ants negatives compare`` prints."""
    r = result
    lines = [
        f"A: {name_a}: {r['n_a']} distinct labels",
        f"B: {name_b}: {r['n_b']} distinct labels",
        f"common: {r['common']} ({r['common'] / max(r['n_a'], 1):.1%} of A, "
        f"{r['common'] / max(r['n_b'], 1):.1%} of B); Jaccard {r['jaccard']:.3f}",
        f"only in A: {r['only_a']}; only in B: {r['only_b']}",
    ]
    for kind, c in r["per_kind"].items():
        lines.append(f"  {kind}: A {c['n_a']}, B {c['n_b']}, common {c['common']}")
    if r["examples_only_a"]:
        lines.append("only in A (first): " + ", ".join(r["examples_only_a"]))
    if r["examples_only_b"]:
        lines.append("only in B (first): " + ", ".join(r["examples_only_b"]))
    return lines
