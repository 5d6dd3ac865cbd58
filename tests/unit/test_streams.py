"""Seeded [OOD + ID] streams (docs/METHOD.md section 4)."""

import numpy as np
import pytest

from ants.streams import Stream, make_stream


def test_order_is_the_pcg64_permutation_of_ood_then_id():
    s = make_stream(5, 3, seed=7, batch_size=3)
    expected = np.random.Generator(np.random.PCG64(7)).permutation(8)
    np.testing.assert_array_equal(s.order, expected)
    # concatenation is [OOD (3), ID (5)]: combined index < 3 is OOD
    np.testing.assert_array_equal(s.is_ood, expected < 3)
    np.testing.assert_array_equal(s.source, np.where(expected < 3, expected, expected - 3))
    assert s.n == len(s) == 8


def test_every_item_appears_once_per_set():
    s = make_stream(50, 20, seed=1)
    assert sorted(s.source[s.is_ood].tolist()) == list(range(20))
    assert sorted(s.source[~s.is_ood].tolist()) == list(range(50))


def test_batches_numbered_from_one_and_last_is_short():
    s = make_stream(4, 3, seed=0, batch_size=3)
    assert s.n_batches == 3
    assert list(s.batches()) == [(1, slice(0, 3)), (2, slice(3, 6)), (3, slice(6, 7))]
    np.testing.assert_array_equal(s.batch_of(), [1, 1, 1, 2, 2, 2, 3])
    with pytest.raises(ValueError, match=r"batch must be an integer in \[1, 3\], got 0"):
        s.batch_slice(0)


def test_gather_puts_both_sets_in_stream_order():
    s = make_stream(3, 2, seed=3, batch_size=2)
    ood = np.array([[10.0], [11.0]])
    idv = np.array([[20.0], [21.0], [22.0]])
    both = np.array([10.0, 11.0, 20.0, 21.0, 22.0])
    np.testing.assert_array_equal(s.gather(ood, idv)[:, 0], both[s.order])
    names = s.gather(["o0", "o1"], ["i0", "i1", "i2"])
    assert names == [["o0", "o1", "i0", "i1", "i2"][i] for i in s.order]
    with pytest.raises(ValueError, match="id_values has 2 items but the stream expects 3"):
        s.gather(ood, idv[:2])


def test_deterministic_and_seed_dependent():
    a = make_stream(100, 40, seed=2)
    b = make_stream(100, 40, seed=2)
    c = make_stream(100, 40, seed=3)
    np.testing.assert_array_equal(a.order, b.order)
    assert not np.array_equal(a.order, c.order)
    assert isinstance(a, Stream) and "n_batches=1" in repr(a)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_id": -1, "n_ood": 2, "seed": 0}, "n_id must be an integer >= 0, got -1"),
        (
            {"n_id": 1, "n_ood": 2, "seed": 0, "batch_size": 0},
            "batch_size must be an integer >= 1, got 0",
        ),
        ({"n_id": 1, "n_ood": 2, "seed": 1.5}, "seed must be an integer >= 0, got 1.5"),
        ({"n_id": 0, "n_ood": 0, "seed": 0}, "at least one item"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_stream(**kwargs)


@pytest.mark.parametrize("order", ["id_first", "ood_first"])
def test_ordered_streams_put_one_set_first_each_shuffled(order):
    s = make_stream(5, 3, seed=4, batch_size=2, order=order)
    first_is_ood = order == "ood_first"
    expected = [first_is_ood] * (3 if first_is_ood else 5) + [not first_is_ood] * (5 if first_is_ood else 3)
    assert s.is_ood.tolist() == expected
    assert sorted(s.order.tolist()) == list(range(8))
    assert s.source[s.is_ood].tolist() != [0, 1, 2] or s.source[~s.is_ood].tolist() != [0, 1, 2, 3, 4]
    assert make_stream(5, 3, seed=4, order=order).order.tolist() == s.order.tolist()


def test_unknown_order_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid orders: shuffled, id_first, ood_first"):
        make_stream(2, 2, seed=0, order="random")
