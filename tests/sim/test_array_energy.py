"""Energy of a whole output-stationary array: tiling, the stream, the golden check."""
import numpy as np
import pytest

from nybble.hw.kinds import pe_spec
from nybble.sim import array_energy as array_mod
from nybble.sim.array_energy import _stream, array_energy, array_tiles, tiles_for
from nybble.sim.energy_data import synthetic_codes
from nybble.sw.errors import ParameterError, ToolError


def test_tiles_for():
    m, n = tiles_for(4096, 2, 2, 64)
    assert (m, n) == (8, 8) and m * n * 64 >= 4096
    assert tiles_for(1, 4, 4, 64) == (4, 4)


def test_array_tiles_row_major():
    a = np.arange(4 * 3).reshape(4, 3)
    b = np.arange(3 * 4).reshape(3, 4)
    tiles = array_tiles(a, b, 2, 2)
    assert len(tiles) == 4
    assert tiles[1][0].tolist() == a[:2].tolist() and tiles[1][1].tolist() == b[:, 2:].tolist()
    with pytest.raises(ParameterError, match=r"A's rows \(4\) and B's columns \(4\) must be "
                                             r"multiples of the array's 3 x 2"):
        array_tiles(a, b, 3, 2)


def test_stream_layout():
    spec = pe_spec("int4")
    a, b = synthetic_codes("uniform", "int4", "int4", 2, 4, 2)
    stream, n = _stream(spec, array_tiles(a, b, 2, 2), 2, 2)
    period = max(4, 2 * 2 - 1)
    assert n == period + 1 + (2 * 2 + 2 + 1 + 4)
    assert stream["valid"][:6].tolist() == [1, 1, 1, 1, 0, 0]
    assert stream["first"][:6].tolist() == [1, 0, 0, 0, 1, 0]  # the flush token after it
    assert stream["a__1"][:4] == a[1].tolist()
    assert stream["b__0"][:4] == b[:, 0].tolist()


def test_bad_shapes():
    with pytest.raises(ParameterError, match="K a multiple of 4"):
        array_energy("int4_dp4", 2, 2, np.zeros((2, 6)), np.zeros((6, 2)))


@pytest.mark.slow
def test_2x2_int4_array_against_the_golden_model():
    a, b = synthetic_codes("uniform", "int4", "int4", 4, 64, 4)
    r = array_energy("int4", 2, 2, a, b)
    assert r.checked_results == 16 and r.macs == 4 * 64 * 4
    assert r.categories["multiplier"] > 0 and r.categories["control"] > 0


@pytest.mark.slow
def test_array_mismatch_is_an_error(monkeypatch):
    real = array_mod._stream

    def corrupt(spec, tiles, rows, cols):
        stream, n = real(spec, tiles, rows, cols)
        stream["a__0"] = [w ^ 1 if i == 3 else w for i, w in enumerate(stream["a__0"])]
        return stream, n

    monkeypatch.setattr(array_mod, "_stream", corrupt)
    a, b = synthetic_codes("uniform", "int4", "int4", 4, 64, 4)
    with pytest.raises(ToolError, match="differs from the golden model in column 0"):
        array_energy("int4", 2, 2, a, b)
