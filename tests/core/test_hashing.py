import array
import hashlib

import polars as pl

from pipelines.core.hashing import table_hash


def frame():
    return pl.DataFrame(
        {
            "id": ["b", "a", "c", "a"],
            "rank": [1, 2, 1, 1],
            "text": ["x", "y", "z", "w"],
            "words": [["p"], [], ["q", "r"], None],
        }
    )


def test_a_table_hash_is_its_rows_in_key_order_whatever_order_they_come_in():
    key = ["id", "rank"]
    assert table_hash(frame(), key) == table_hash(frame().reverse(), key)
    assert table_hash(frame(), key) == table_hash(frame().sample(fraction=1, shuffle=True), key)
    # Unchanged from when the table itself was sorted: releases compare with older hashes.
    ordered = frame().sort(key)
    expected = hashlib.sha256(repr(list(ordered.schema.items())).encode())
    expected.update(array.array("Q", ordered.hash_rows(seed=0).to_list()).tobytes())
    assert table_hash(frame(), key) == expected.hexdigest()


def test_any_change_of_value_type_or_row_changes_the_hash():
    key = ["id", "rank"]
    base = table_hash(frame(), key)
    assert table_hash(frame().with_columns(text=pl.lit("x")), key) != base
    assert table_hash(frame().with_columns(pl.col("rank").cast(pl.Int32)), key) != base
    assert table_hash(frame().head(3), key) != base
    assert table_hash(frame().clear(), key) != base


def test_rows_with_equal_keys_hash_the_same_in_any_order():
    key = ["id"]  # "a" twice
    assert table_hash(frame(), key) == table_hash(frame().reverse(), key)


def test_a_frame_is_hashed_once_while_it_lives_and_its_hash_goes_with_it(monkeypatch):
    from pipelines.core import hashing

    hashed = []
    compute = hashing._table_hash
    monkeypatch.setattr(
        hashing, "_table_hash", lambda f, key: hashed.append(f.height) or compute(f, key)
    )
    key = ["id", "rank"]
    table = frame()
    first = table_hash(table, key)
    assert table_hash(table, key) == first and hashed == [4]
    # Another key is hashed again.
    table_hash(table, ["text"])
    assert hashed == [4, 4]
    del table
    # A new frame is hashed for itself, even if it is given the old one's id.
    assert table_hash(frame().head(3), key) != first and hashed == [4, 4, 3]
    assert table_hash(frame(), key) == first and hashed == [4, 4, 3, 4]


def test_rows_hashed_in_slices_hash_as_rows_hashed_at_once(monkeypatch):
    import pipelines.core.hashing as hashing

    big = pl.concat([frame()] * 5).with_row_index("n")
    at_once = big.hash_rows(seed=0)
    monkeypatch.setattr(hashing, "ROWS_PER_HASH", 3)
    assert hashing.row_hashes(big).equals(at_once)
    assert hashing.row_hashes(big.head(3)).equals(at_once.head(3))
