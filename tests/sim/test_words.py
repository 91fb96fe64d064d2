"""The one word codec (:mod:`nybble.sim.words`) against plain Python integer arithmetic."""
import numpy as np
import pytest

from nybble.sim.words import chunks_to_ints, ints_to_chunks, pack_fields, pack_ints, to_signed


def _reference(row, widths):
    v, off = 0, 0
    for x, w in zip(row, widths):
        v |= (int(x) & ((1 << w) - 1)) << off
        off += w
    return v


@pytest.mark.parametrize("widths", [[4] * 16, [8, 8, 8], [4] * 8 + [8], [16] * 9 + [16],
                                    [3, 30, 64, 1, 33], [64, 64, 64], [32] * 5])
def test_pack_matches_integer_arithmetic(widths, rng):
    fields = np.stack([rng.integers(0, 1 << min(w, 62), size=20) for w in widths], axis=1)
    fields[0] = [(1 << min(w, 62)) - 1 for w in widths]        # all ones
    want = [_reference(r, widths) for r in fields]
    assert pack_ints(fields, widths) == want
    chunks = pack_fields(fields, widths)
    assert chunks.dtype == np.uint32 and chunks.shape[1] == max(1, -(-sum(widths) // 32))
    assert chunks_to_ints(chunks) == want
    assert np.array_equal(ints_to_chunks(np.array(want, dtype=object), sum(widths)), chunks)


def test_one_width_for_all_fields_and_masking():
    assert pack_ints([[1, 2, 3]], 4) == [0x321]
    assert pack_ints([[0x1F, 0]], 4) == [0xF]                  # masked to the width
    assert pack_ints([[-1, 0]], 4) == [0xF]                    # two's complement


def test_to_signed():
    assert to_signed([0, 1, 127, 128, 255], 8).tolist() == [0, 1, 127, -128, -1]
    big = to_signed([(1 << 70) - 1], 70)
    assert big.dtype == object and big.tolist() == [-1]


def test_errors():
    with pytest.raises(ValueError, match=r"^need 2 field widths in 1\.\.64, not \[4, 65\]$"):
        pack_fields([[1, 2]], [4, 65])
    with pytest.raises(ValueError, match=r"^fields must be an \(n, f\) array, not shape \(3,\)$"):
        pack_fields([1, 2, 3], 4)
    with pytest.raises(ValueError, match=r"^words are 3 chunks wide, the port 2$"):
        ints_to_chunks(np.zeros((1, 3), np.uint32), 64)


def test_ints_to_chunks_keeps_words_above_2_63():
    # a list mixing ints >= 2**63 with small ones is float64 to numpy: must not be rounded
    big = 0xD9C2_A30F_82D9_DE01
    assert ints_to_chunks([big, 5], 64).tolist() == [[0x82D9DE01, 0xD9C2A30F], [5, 0]]
