import json

import pytest

from nybble.explore.points import POINT_FIELDS, DesignPoint, cross_product, read_points
from nybble.sw.errors import InputFileError, ParameterError, ParameterTypeError


def test_cross_product_order_and_skipped_block_ws():
    points, skipped = cross_product(["int4", "mxfp4"], ["4x4", (2, 8)], ["os", "ws"],
                                    [None, 25.0], [500])
    assert len(points) == 2 * 2 * 2 + 2 * 1 * 2
    assert points[0] == DesignPoint("int4", 4, 4, "os", None, 500.0)
    assert points[1].dram_bw_gbps == 25.0
    assert all(p.dataflow == "os" for p in points if p.pe == "mxfp4")
    assert len(skipped) == 4
    assert all("block-scaled" in s["reason"] and s["point"]["pe"] == "mxfp4" for s in skipped)


def test_point_label_and_dict():
    p = DesignPoint("int8", 8, 4, "ws", 12.5, 400)
    assert p.label == "int8 8x4 ws @12.5GB/s @400MHz"
    assert list(p.as_dict()) == list(POINT_FIELDS)
    assert p.config().clock_mhz == 400


def test_bitserial_point_is_a_lockstep_os_array():
    p = DesignPoint("bitserial", 4, 4)
    assert p.bitserial and p.config().bit_serial
    with pytest.raises(ParameterError, match="output-stationary"):
        DesignPoint("bitserial", 4, 4, "ws")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(pe="int3", rows=4, cols=4), ParameterError, r"PE kind must be one of"),
    (dict(pe=4, rows=4, cols=4), ParameterTypeError, r"DesignPoint\.pe must be"),
    (dict(pe="int4", rows=0, cols=4), ParameterError, r"ArrayConfig\.rows must be in 1\.\.256"),
    (dict(pe="int4", rows=2.5, cols=4), ParameterTypeError, r"DesignPoint\.rows must be an "
                                                            r"integer"),
    (dict(pe="int4", rows=4, cols=4, dataflow="is"), ParameterError,
     r"DesignPoint\.dataflow must be one of os, ws, not 'is'"),
    (dict(pe="int4", rows=4, cols=4, dram_bw_gbps=0), ParameterError,
     r"DesignPoint\.dram_bw_gbps must be a positive number or None, not 0"),
])
def test_point_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DesignPoint(**kwargs)


def test_cross_product_unknown_kind_is_an_error_not_a_skip():
    with pytest.raises(ParameterError, match="PE kind must be one of"):
        cross_product(["int3"], ["4x4"])
    with pytest.raises(ParameterError, match="arrays must list at least one value"):
        cross_product(["int4"], [])


def test_read_points_csv_and_json(tmp_path):
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("pe,array,dataflow,dram_bw_gbps,clock_mhz\nint4,4x4,ws,,300\n"
                        "int8,2x8,os,10,\n")
    pts = read_points(csv_path)
    assert pts == [DesignPoint("int4", 4, 4, "ws", None, 300.0),
                   DesignPoint("int8", 2, 8, "os", 10.0, None)]
    js = tmp_path / "p.json"
    js.write_text(json.dumps([{"pe": "int4", "rows": 4, "cols": 2}]))
    assert read_points(js) == [DesignPoint("int4", 4, 2)]


@pytest.mark.parametrize("name, text, match", [
    ("a.csv", "pe,array\nint4,4y4\n", r"a\.csv:2: array must look like ROWSxCOLS"),
    ("a.csv", "pe,array,speed\nint4,4x4,3\n", r"a\.csv:2: unknown key\(s\) speed"),
    ("a.csv", "pe,array,clock_mhz\nint4,4x4,fast\n", r"a\.csv:2: clock_mhz must be a number"),
    ("a.csv", "pe,array\nmxfp4,4x4\n", None),
    ("a.json", "{}", r"a\.json: a points file holds a JSON list"),
    ("a.json", "[", r"a\.json: not JSON"),
    ("a.csv", "pe,array\n", r"a\.csv: no design points"),
])
def test_read_points_errors(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    if match is None:
        assert read_points(path)[0].pe == "mxfp4"
        return
    with pytest.raises(InputFileError, match=match):
        read_points(path)
    with pytest.raises(InputFileError, match="does not exist"):
        read_points(tmp_path / "nope.csv")
