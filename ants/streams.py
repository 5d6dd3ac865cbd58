"""Seeded test-time streams: one OOD set and the ID test set, shuffled together, in batches.

docs/METHOD.md section 4: for each OOD dataset separately, concatenate ``[OOD set, ID set]``,
shuffle, and iterate in batches of 256. The authors do not seed the shuffle; here it is
``numpy.random.Generator(PCG64(seed)).permutation(n_ood + n_id)``, so a stream is fully
determined by ``(n_id, n_ood, seed, batch_size, order)``.

Orders (:data:`ORDERS`, the paper's temporal-shift study): ``shuffled`` (the protocol above);
``id_first`` (every ID item, then every OOD item) and ``ood_first`` (the reverse), each set
shuffled within itself by the same seeded generator (OOD set first, then ID set).

Conventions
-----------
* Positions ``p = 0 .. n-1`` are stream order. Position ``p`` holds the item at index
  ``order[p]`` of the concatenation ``[OOD set (n_ood items), ID set (n_id items)]``;
  ``source[p]`` is the index inside its own set and ``is_ood[p]`` says which set.
* Batches are numbered from 1 (as in the authors' code, docs/METHOD.md section 10): batch ``b``
  covers positions ``(b-1)*batch_size .. min(n, b*batch_size) - 1``; the last may be short.
* A stream works on precomputed per-item arrays (embeddings, ids, paths): :meth:`Stream.gather`
  puts an OOD-set array and an ID-set array into stream order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEFAULT_BATCH_SIZE", "ORDERS", "Stream", "make_stream"]

DEFAULT_BATCH_SIZE = 256
ORDERS = ("shuffled", "id_first", "ood_first")


def _check_count(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True, eq=False)
class Stream:
    """A shuffled ``[OOD, ID]`` stream; see the module docstring for the conventions."""

    n_id: int
    n_ood: int
    seed: int
    batch_size: int
    order: np.ndarray  # (n,) int64: index into the concatenation [OOD set, ID set]

    @property
    def n(self) -> int:
        """Number of samples in the stream."""
        return self.n_id + self.n_ood

    def __len__(self) -> int:
        return self.n

    @property
    def is_ood(self) -> np.ndarray:
        """``(n,)`` bool: True where the position holds an OOD item."""
        return self.order < self.n_ood

    @property
    def source(self) -> np.ndarray:
        """``(n,)`` int64: index of each position's item inside its own set (OOD or ID)."""
        return np.where(self.order < self.n_ood, self.order, self.order - self.n_ood)

    @property
    def n_batches(self) -> int:
        return -(-self.n // self.batch_size)

    def batch_slice(self, batch: int) -> slice:
        """Positions of batch ``batch`` (numbered from 1)."""
        if (
            isinstance(batch, bool)
            or not isinstance(batch, (int, np.integer))
            or not 1 <= batch <= self.n_batches
        ):
            raise ValueError(f"batch must be an integer in [1, {self.n_batches}], got {batch!r}")
        start = (int(batch) - 1) * self.batch_size
        return slice(start, min(self.n, start + self.batch_size))

    def batches(self) -> Iterator[tuple[int, slice]]:
        """``(batch number from 1, slice of positions)`` in stream order."""
        for b in range(1, self.n_batches + 1):
            yield b, self.batch_slice(b)

    def batch_of(self) -> np.ndarray:
        """``(n,)`` int64: the batch number (from 1) of every position."""
        return np.arange(self.n, dtype=np.int64) // self.batch_size + 1

    def gather(self, ood_values: Any, id_values: Any) -> Any:
        """Put per-item values of the OOD set and of the ID set into stream order.

        Arrays (numpy, leading axis = items) give an array; other sequences (lists of paths or
        ids) give a list. The lengths must be ``n_ood`` and ``n_id``.
        """
        for values, expected, name in (
            (ood_values, self.n_ood, "ood_values"),
            (id_values, self.n_id, "id_values"),
        ):
            if len(values) != expected:
                raise ValueError(
                    f"{name} has {len(values)} items but the stream expects {expected}"
                )
        if isinstance(ood_values, np.ndarray) and isinstance(id_values, np.ndarray):
            return np.concatenate([ood_values, id_values], axis=0)[self.order]
        both: Sequence[Any] = list(ood_values) + list(id_values)
        return [both[i] for i in self.order]

    def __repr__(self) -> str:
        return (
            f"Stream(n_id={self.n_id}, n_ood={self.n_ood}, seed={self.seed}, "
            f"batch_size={self.batch_size}, n_batches={self.n_batches})"
        )


def make_stream(
    n_id: int,
    n_ood: int,
    *,
    seed: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    order: str = "shuffled",
) -> Stream:
    """The stream of ``[OOD set (n_ood), ID set (n_id)]`` shuffled with ``PCG64(seed)``
    (``order``: one of :data:`ORDERS`, see the module docstring).

    >>> s = make_stream(3, 2, seed=0, batch_size=2)
    >>> s.n, s.n_batches
    (5, 3)
    """
    n_id = _check_count(n_id, "n_id", minimum=0)
    n_ood = _check_count(n_ood, "n_ood", minimum=0)
    seed = _check_count(seed, "seed", minimum=0)
    batch_size = _check_count(batch_size, "batch_size", minimum=1)
    if n_id + n_ood == 0:
        raise ValueError("a stream needs at least one item (n_id + n_ood == 0)")
    if order not in ORDERS:
        raise ValueError(f"stream order {order!r} is not valid; valid orders: {', '.join(ORDERS)}")
    rng = np.random.Generator(np.random.PCG64(seed))
    if order == "shuffled":
        positions = rng.permutation(n_ood + n_id)
    else:
        ood = rng.permutation(n_ood)
        idx = rng.permutation(n_id) + n_ood
        positions = np.concatenate([idx, ood] if order == "id_first" else [ood, idx])
    positions = positions.astype(np.int64)
    positions.setflags(write=False)
    return Stream(n_id=n_id, n_ood=n_ood, seed=seed, batch_size=batch_size, order=positions)
