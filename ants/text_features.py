"""Text features of the MLLM's negatives, computed once per (backbone, template, text).

ANTS encodes every ENS sentence (no template) and every VSNL label ("The nice {}.") with the
CLIP text encoder. Those texts repeat across streams, seeds, methods and re-runs, so their
features live in a content-addressed store, like the MLLM answers:

* :class:`TextFeatureStore`: one SQLite file (WAL, safe for several processes) mapping
  ``key = sha256(canonical JSON of {encoder identity, template, text})`` to the float32
  feature. An entry never changes: the key holds everything that decides it. The file is
  checked when it is opened (writable, SQLite, ``quick_check``, schema) and every feature read
  is verified against the digest stored with it (:func:`feature_digest`: key, template, text,
  dimension, dtype and bytes), with :mod:`ants._sqlite`, as the answer cache is; a damaged
  store is a :class:`TextFeatureStoreError` naming the file and the way out (delete it: the
  ``encode_negatives`` jobs re-create a missing store and re-encode what they need).
* :func:`encode_texts_once`: the features of a list of ``(template, text)`` pairs, encoding
  only the pairs not yet stored (the encoder is built lazily, so an all-hit call never loads
  CLIP) and storing the new ones in one transaction.

The workflow's ``encode_negatives`` stage writes, per stream, the features of exactly the texts
that stream's answers hold (:func:`ants.stages.negative_texts`) to a Parquet table; the ANTS
score job reads that table and makes no CLIP forward pass (:func:`lookup_encoder`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ants._io import canonical_json
from ants._sqlite import DIGEST, StoreKind, entry_digest, guard, open_store, transaction

__all__ = [
    "MissingTextFeatureError",
    "TextFeatureStoreError",
    "encoder_key",
    "TextFeatureStore",
    "encode_texts_once",
    "lookup_encoder",
    "text_key",
]

Pair = tuple[str, str]  # (template, text)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS features (
    key TEXT PRIMARY KEY,
    template TEXT NOT NULL,
    text TEXT NOT NULL,
    dim INTEGER NOT NULL,
    feature BLOB NOT NULL,
    digest TEXT NOT NULL DEFAULT ''
)
"""
#: the columns of the ``features`` table: an entry, then its digest (:func:`feature_digest`)
COLUMNS = ("key", "template", "text", "dim", "feature", DIGEST)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM features"
#: how a feature is stored: little-endian float32
DTYPE = "<f4"
#: what to do about a damaged store: it only caches features, so deleting it loses no work
#: that cannot be redone (an encode_negatives job re-creates a missing store and re-encodes
#: what its stream needs)
WAY_OUT = (
    "delete it: it only caches features, and the encode_negatives jobs re-create it, "
    "re-encoding what they need (`snakemake --forcerun encode_negatives` re-encodes every "
    "stream's negatives)"
)


class TextFeatureStoreError(ValueError):
    """The text-feature store cannot be used: a folder, not writable, empty, truncated, not
    SQLite, failing SQLite's integrity check, another program's, or an entry whose bytes do
    not match its digest. The message is one line naming the file, what is wrong and the way
    out."""


class MissingTextFeatureError(LookupError):
    """A score job needed the feature of a text that its feature table does not hold."""


def feature_digest(row) -> str:
    """The digest of a ``features`` row (``key, template, text, dim, feature`` as stored):
    over those fields, the storage dtype (:data:`DTYPE`) and the feature's bytes."""
    key, template, text, dim, blob = row
    return entry_digest((key, template, text, dim, DTYPE), bytes(blob))


KIND = StoreKind(
    noun="text feature store",
    table="features",
    columns=COLUMNS,
    schema=_SCHEMA,
    error=TextFeatureStoreError,
    digest=feature_digest,
    way_out=WAY_OUT,
    entry_way_out=WAY_OUT,
)


def encoder_key(backbone: Mapping, precision: str) -> dict:
    """What identifies a text encoder without loading it: the backbone's settings
    (``params.backbones.<name>``: model, hub tag, overrides, seed), the precision, and the
    SHA-256 of a local weights file (so new weights at the same path get new keys)."""
    from ants._io import file_digest

    key = {"backbone": dict(backbone), "precision": str(precision)}
    weights = backbone.get("weights_path")
    if weights:
        key["weights_sha256"] = file_digest(Path(weights).expanduser())
    return key


def text_key(encoder_identity: Mapping, template: str, text: str) -> str:
    """SHA-256 hex digest naming the feature of ``text`` encoded with ``template``."""
    return hashlib.sha256(
        canonical_json(
            {"encoder": dict(encoder_identity), "template": template, "text": text}
        ).encode("utf-8")
    ).hexdigest()


class TextFeatureStore:
    """Content-addressed text features in one SQLite file (see the module docstring).

    Opening checks the file (:func:`ants._sqlite.open_store`: writable, SQLite, integrity,
    schema) and raises :class:`TextFeatureStoreError` before any work; every feature read is
    verified against its digest.
    """

    def __init__(
        self, path: str | os.PathLike, encoder_identity: Mapping, timeout_s: float = 120.0
    ) -> None:
        self.path = Path(path)
        self.identity = dict(encoder_identity)
        self._conn = open_store(self.path, KIND, float(timeout_s))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TextFeatureStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_many(self, pairs: Sequence[Pair]) -> dict[Pair, np.ndarray]:
        """The stored features of ``pairs`` (missing pairs are simply absent).

        A feature whose bytes do not match its digest raises :class:`TextFeatureStoreError`.
        """
        keys = {text_key(self.identity, t, x): (t, x) for t, x in pairs}
        out: dict[Pair, np.ndarray] = {}
        items = list(keys)
        with guard(self.path, KIND):
            for start in range(0, len(items), 500):
                chunk = items[start : start + 500]
                rows = self._conn.execute(
                    f"{_SELECT} WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                for row in rows:
                    template, text = keys[row[0]]
                    KIND.verify(
                        self.path, row, f"of {text!r} (template {template!r}, key {row[0]})"
                    )
                    out[(template, text)] = np.frombuffer(row[4], dtype=DTYPE).astype(np.float32)
        return out

    def put_many(self, pairs: Sequence[Pair], features: np.ndarray) -> int:
        """Store ``features[i]`` for ``pairs[i]`` (one committed transaction); returns the count.

        A pair already stored keeps its feature (the key decides it).
        """
        feats = np.asarray(features, dtype=DTYPE)
        if feats.ndim != 2 or feats.shape[0] != len(pairs):
            raise ValueError(f"expected {len(pairs)} feature rows, got shape {feats.shape}")
        rows = []
        for i, (t, x) in enumerate(pairs):
            row = (text_key(self.identity, t, x), t, x, int(feats.shape[1]), feats[i].tobytes())
            rows.append((*row, feature_digest(row)))
        with guard(self.path, KIND), transaction(self._conn) as conn:
            conn.executemany(
                f"INSERT OR IGNORE INTO features ({', '.join(COLUMNS)}) "
                f"VALUES ({','.join('?' * len(COLUMNS))})",
                rows,
            )
        return len(pairs)

    def damaged_keys(self) -> list[str]:
        """The keys of every entry whose bytes do not match its digest (a full scan)."""
        with guard(self.path, KIND):
            return [
                row[0] for row in self._conn.execute(_SELECT) if feature_digest(row[:-1]) != row[-1]
            ]

    def __len__(self) -> int:
        with guard(self.path, KIND):
            return int(self._conn.execute("SELECT COUNT(*) FROM features").fetchone()[0])


EncodeText = Callable[[Sequence[str], str], np.ndarray]


def encode_texts_once(
    pairs: Iterable[Pair], store: TextFeatureStore, make_encoder: Callable[[], EncodeText]
) -> tuple[list[Pair], np.ndarray, int]:
    """``(pairs, features, n_encoded)``: the distinct pairs in first-seen order with their
    features, encoding only those not in ``store`` (``make_encoder()`` is called at most once,
    and only when something is missing)."""
    unique = list(dict.fromkeys((str(t), str(x)) for t, x in pairs))
    found = store.get_many(unique)
    missing = [p for p in unique if p not in found]
    if missing:
        encode = make_encoder()
        by_template: dict[str, list[str]] = {}
        for t, x in missing:
            by_template.setdefault(t, []).append(x)
        for template, texts in by_template.items():
            feats = np.asarray(encode(texts, template), dtype=np.float32)
            store.put_many([(template, x) for x in texts], feats)
            found.update({(template, x): feats[i] for i, x in enumerate(texts)})
    if not unique:
        return [], np.zeros((0, 0), np.float32), 0
    return unique, np.stack([found[p] for p in unique]).astype(np.float32), len(missing)


def lookup_encoder(
    pairs: Sequence[Pair], features: np.ndarray, *, source: str = "the text feature table"
) -> EncodeText:
    """An ``encode_text(texts, template)`` that looks every text up in ``pairs``/``features``.

    A text that is not there raises :class:`MissingTextFeatureError` naming it and ``source``.
    """
    index = {p: i for i, p in enumerate(pairs)}
    feats = np.asarray(features, dtype=np.float32)

    def encode(texts: Sequence[str], template: str) -> np.ndarray:
        rows = []
        for text in texts:
            i = index.get((template, text))
            if i is None:
                raise MissingTextFeatureError(
                    f"no text feature for {text!r} (template {template!r}) in {source}; "
                    "re-run the encode_negatives job of this stream"
                )
            rows.append(i)
        return (
            feats[rows]
            if rows
            else np.zeros((0, feats.shape[1] if feats.ndim == 2 else 0), np.float32)
        )

    return encode
