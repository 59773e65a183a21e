"""Packed codes and Hamming search against numpy; sharded search on 8 fake devices."""

import numpy as np
import pytest

from ndvr_jax import sharding
from ndvr_jax.hashing import codes


def numpy_pack(bits):
    n_words = -(-bits.shape[1] // 32)
    padded = np.zeros((len(bits), n_words * 32), np.uint8)
    padded[:, : bits.shape[1]] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u4")


def numpy_hamming(a_bits, b_bits):
    return (a_bits[:, None, :] != b_bits[None, :, :]).sum(-1)


@pytest.mark.parametrize("num_bits", [1, 31, 64, 100, 256])
def test_pack_bits_matches_numpy(num_bits):
    bits = np.random.default_rng(num_bits).random((7, num_bits)) < 0.5
    packed = np.asarray(codes.pack_bits(bits))
    assert packed.dtype == np.uint32 and packed.shape == (7, codes.num_words(num_bits))
    np.testing.assert_array_equal(packed, numpy_pack(bits))
    unpacked = np.unpackbits(packed.view(np.uint8), axis=1, bitorder="little")
    np.testing.assert_array_equal(unpacked[:, :num_bits], bits)
    assert not unpacked[:, num_bits:].any()  # zero padding


def test_binarize_at_half():
    np.testing.assert_array_equal(
        codes.binarize(np.array([0.0, 0.49, 0.5, 0.51, 1.0])), [False, False, True, True, True]
    )


@pytest.mark.parametrize("num_bits", [64, 100])
def test_packed_hamming_equals_numpy(num_bits):
    rng = np.random.default_rng(0)
    a, b = rng.random((9, num_bits)) < 0.5, rng.random((13, num_bits)) < 0.5
    got = codes.hamming_distances(codes.pack_bits(a), codes.pack_bits(b))
    np.testing.assert_array_equal(got, numpy_hamming(a, b))


def _tie_heavy_codes(seed, n_query, n_db, num_bits=64):
    # Few distinct codes, so that many distances tie and the tie order is exercised.
    rng = np.random.default_rng(seed)
    pool = rng.random((6, num_bits)) < 0.5
    return pool[rng.integers(0, 6, n_query)], pool[rng.integers(0, 6, n_db)]


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_top_k_equals_numpy_argsort(chunk_size):
    q_bits, db_bits = _tie_heavy_codes(1, 5, 50)
    want_distance = numpy_hamming(q_bits, db_bits)
    want_index = np.argsort(want_distance, axis=1, kind="stable")[:, :10]
    got = codes.hamming_top_k(
        numpy_pack(q_bits), numpy_pack(db_bits), 10, chunk_size=chunk_size, query_chunk_size=2
    )
    np.testing.assert_array_equal(got.index, want_index)
    np.testing.assert_array_equal(got.distance, np.take_along_axis(want_distance, want_index, 1))


def test_one_and_eight_devices_agree():
    q_bits, db_bits = _tie_heavy_codes(2, 6, 101, num_bits=128)
    queries, database = numpy_pack(q_bits), numpy_pack(db_bits)
    one = codes.hamming_top_k(queries, database, 20, chunk_size=4)
    eight = codes.hamming_top_k(queries, database, 20, chunk_size=4, mesh=sharding.make_mesh(8))
    np.testing.assert_array_equal(eight.index, one.index)
    np.testing.assert_array_equal(eight.distance, one.distance)
    want = np.argsort(numpy_hamming(q_bits, db_bits), axis=1, kind="stable")[:, :20]
    np.testing.assert_array_equal(one.index, want)


def test_top_k_rejects_bad_k():
    words = np.zeros((3, 2), np.uint32)
    with pytest.raises(ValueError, match="k must be"):
        codes.hamming_top_k(words, words, 4)


@pytest.mark.parametrize("k", [1, 10, 300])
def test_top_k_over_many_chunks_matches_numpy(k):
    # 16 blocks a chunk: the first chunk merges whole, later ones mostly through few blocks.
    rng = np.random.default_rng(k)
    q_bits, db_bits = rng.random((5, 64)) < 0.5, rng.random((3000, 64)) < 0.5
    got = codes.hamming_top_k(numpy_pack(q_bits), numpy_pack(db_bits), k, chunk_size=512)
    distance = numpy_hamming(q_bits, db_bits)
    want = np.argsort(distance, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(got.index, want)
    np.testing.assert_array_equal(got.distance, np.take_along_axis(distance, want, 1))


@pytest.mark.parametrize("k", [1, 100, 2500])
def test_top_k_with_ties_across_groups_and_devices_matches_numpy(k):
    # 3 distinct codes over 5,000 rows: thousands of equal distances cross block (16 rows),
    # group (1,024 rows) and device boundaries, so every tie-break of the selection is used.
    q_bits, db_bits = _tie_heavy_codes(k, 4, 5000)
    db_bits[::7] = q_bits[0]  # many exact matches of query 0, spread over every group
    queries, database = numpy_pack(q_bits), numpy_pack(db_bits)
    distance = numpy_hamming(q_bits, db_bits)
    want = np.argsort(distance, axis=1, kind="stable")[:, :k]
    for mesh in (None, sharding.make_mesh(8)):
        got = codes.hamming_top_k(queries, database, k, chunk_size=1024, mesh=mesh)
        np.testing.assert_array_equal(got.index, want)
        np.testing.assert_array_equal(got.distance, np.take_along_axis(distance, want, 1))
