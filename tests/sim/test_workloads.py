"""Workloads: LLaMA-7B and ResNet-50 GEMM shapes, SCALE-Sim topology and .cfg files."""

import re

import numpy as np
import pytest

from nybble.cmd_example import SCALESIM_CFG

from nybble.sim.workloads import (
    Layer, get_workload, llama_7b, read_scalesim_cfg, read_topology, resnet50,
    scalesim_sram_depths, total_macs)


# --------------------------------------------------------------------------------------------
# Layer

def test_layer_macs_and_numpy_ints():
    layer = Layer("x", np.int64(3), 4, 5, count=np.int32(2))
    assert (layer.m, layer.count, layer.macs) == (3, 2, 3 * 4 * 5 * 2)
    assert type(layer.m) is int


@pytest.mark.parametrize("field, value, exc, msg", [
    ("m", 0, ValueError, r"^Layer\.m must be at least 1, not 0$"),
    ("k", -3, ValueError, r"^Layer\.k must be at least 1, not -3$"),
    ("n", 2.0, TypeError, r"^Layer\.n must be an integer, not 2\.0$"),
    ("count", True, TypeError, r"^Layer\.count must be an integer, not True$"),
])
def test_layer_wrong_values(field, value, exc, msg):
    kw = {"name": "x", "m": 1, "n": 1, "k": 1, "count": 1, field: value}
    with pytest.raises(exc, match=msg):
        Layer(**kw)


# --------------------------------------------------------------------------------------------
# LLaMA-7B

LLAMA_2048 = {          # name: (M, N, K, count) at seq_len 2048, batch 1
    "q_proj": (2048, 4096, 4096, 1),
    "k_proj": (2048, 4096, 4096, 1),
    "v_proj": (2048, 4096, 4096, 1),
    "attn_scores": (2048, 2048, 128, 32),
    "attn_values": (2048, 128, 2048, 32),
    "o_proj": (2048, 4096, 4096, 1),
    "ffn_gate": (2048, 11008, 4096, 1),
    "ffn_up": (2048, 11008, 4096, 1),
    "ffn_down": (2048, 4096, 11008, 1),
}


def test_llama_7b_shapes():
    layers = llama_7b()
    assert {l.name: (l.m, l.n, l.k, l.count) for l in layers} == LLAMA_2048
    assert [l.name for l in layers] == list(LLAMA_2048)


def test_llama_7b_macs():
    # 4 projections of T*d^2, 2 x 32 heads of T^2*128, 3 FFN matrices of T*d*11008
    t, d, f = 2048, 4096, 11008
    expected = 4 * t * d * d + 2 * 32 * t * t * 128 + 3 * t * d * f
    assert total_macs(llama_7b()) == expected == 448_824_082_432


def test_llama_7b_seq_len_and_batch():
    layers = {l.name: l for l in llama_7b(seq_len=512, batch=3)}
    assert (layers["q_proj"].m, layers["ffn_down"].m) == (1536, 1536)
    s = layers["attn_scores"]
    assert (s.m, s.n, s.k, s.count) == (512, 512, 128, 96)
    v = layers["attn_values"]
    assert (v.m, v.n, v.k, v.count) == (512, 128, 512, 96)


@pytest.mark.parametrize("kw, exc, msg", [
    ({"seq_len": 0}, ValueError, r"^llama_7b\.seq_len must be at least 1, not 0$"),
    ({"batch": 1.5}, TypeError, r"^llama_7b\.batch must be an integer, not 1\.5$"),
])
def test_llama_7b_wrong_params(kw, exc, msg):
    with pytest.raises(exc, match=msg):
        llama_7b(**kw)


# --------------------------------------------------------------------------------------------
# ResNet-50

def test_resnet50_counts_and_macs():
    layers = resnet50()
    convs = [l for l in layers if l.name != "fc"]
    assert len(convs) == 53 and len(layers) == 54
    assert sum(l.name.endswith("downsample") for l in layers) == 4
    # torchvision's ResNet-50 (v1.5): 4.09 G multiply-adds at 224x224, FC included
    assert total_macs(layers) == 4_089_184_256
    assert layers[-1] == Layer("fc", 1, 1000, 2048)


@pytest.mark.parametrize("name, shape", [
    ("conv1", (112 * 112, 64, 3 * 7 * 7)),
    ("layer1.0.conv1", (56 * 56, 64, 64)),
    ("layer1.0.conv2", (56 * 56, 64, 64 * 9)),
    ("layer1.0.downsample", (56 * 56, 256, 64)),
    ("layer1.1.conv1", (56 * 56, 64, 256)),
    ("layer2.0.conv1", (56 * 56, 128, 256)),        # stride on the 3x3 (v1.5): still 56x56
    ("layer2.0.conv2", (28 * 28, 128, 128 * 9)),
    ("layer2.0.downsample", (28 * 28, 512, 256)),
    ("layer3.5.conv3", (14 * 14, 1024, 256)),
    ("layer4.0.downsample", (7 * 7, 2048, 1024)),
    ("layer4.2.conv3", (7 * 7, 2048, 512)),
])
def test_resnet50_shapes(name, shape):
    layers = {l.name: l for l in resnet50()}
    l = layers[name]
    assert (l.m, l.n, l.k, l.count) == (*shape, 1)


def test_resnet50_batch_and_image():
    base = {l.name: l for l in resnet50()}
    big = {l.name: l for l in resnet50(batch=4, image=256)}
    assert big["conv1"].m == 4 * 128 * 128
    assert big["layer4.2.conv3"].m == 4 * 8 * 8
    assert big["fc"].m == 4
    assert all((big[n].n, big[n].k) == (base[n].n, base[n].k) for n in base)
    # as in PyTorch, any image size runs: padded stride-2 convolutions never go below 1x1
    assert {l.name: l.m for l in resnet50(image=64)}["layer4.0.conv2"] == 2 * 2
    assert all(l.m == 1 for l in resnet50(image=1))
    with pytest.raises(ValueError, match=r"^resnet50\.image must be at least 1, not 0$"):
        resnet50(image=0)


def test_get_workload():
    assert get_workload("llama-7b", seq_len=128) == llama_7b(seq_len=128)
    assert get_workload("resnet50") == resnet50()
    with pytest.raises(ValueError, match=r"^workload must be one of llama-7b, resnet50, not 'bert'$"):
        get_workload("bert")


# --------------------------------------------------------------------------------------------
# SCALE-Sim topology CSVs (contents as in scale-sim-v2's topologies/)

def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def shapes(layers):
    return [(l.name, l.m, l.n, l.k, l.count) for l in layers]


def test_read_gemm_topology(tmp_path):
    # topologies/GEMM_mnk/gpt2.csv: no trailing commas
    p = write(tmp_path, "gpt2.csv",
              "Layer,M,N,K\nQKT,1024,1024,64\nQKTV,1024,64,1024\nLinear1,1024,4800,1600\n")
    assert shapes(read_topology(p)) == [("QKT", 1024, 1024, 64, 1), ("QKTV", 1024, 64, 1024, 1),
                                        ("Linear1", 1024, 4800, 1600, 1)]


def test_read_gemm_topology_spaces_trailing_comma_sparsity(tmp_path):
    # topologies/GEMM_mnk/test_mnk_input.csv, plus v2's optional N:M sparsity column
    p = write(tmp_path, "mnk.csv",
              "Layer Name, M, N, K,\nTest 1, 256, 128, 256,\n\nTest 2, 8, 16, 32, 2:4,\n")
    assert shapes(read_topology(p)) == [("Test 1", 256, 128, 256, 1), ("Test 2", 8, 16, 32, 1)]


def test_read_conv_topology_alexnet(tmp_path):
    # topologies/conv_nets/alexnet.csv (padded cells, trailing commas)
    p = write(tmp_path, "alexnet.csv",
              "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
              "Num Filter, Strides,\n"
              "Conv1     ,224         ,224        ,11           ,11          ,3       ,96        ,4      ,\n"
              "Conv2     ,27         ,27        ,5            ,5           ,96      ,256       ,1      ,\n")
    # SCALE-Sim: out = ceil((224 - 11 + 4) / 4) = 55; (27 - 5) / 1 + 1 = 23; no padding
    assert shapes(read_topology(p)) == [("Conv1", 55 * 55, 96, 11 * 11 * 3, 1),
                                        ("Conv2", 23 * 23, 256, 5 * 5 * 96, 1)]


def test_read_conv_topology_resnet_extra_columns(tmp_path):
    # topologies/conv_nets/Resnet50.csv: extra header columns, a row of bare commas, no
    # trailing comma on the last line, and SCALE-Sim's round-up on an uneven stride
    p = write(tmp_path, "Resnet50.csv",
              "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
              "Num Filter, Strides,,,Eh,Ew,e2\n"
              ",,,,,,,,,,,,\n"
              "Conv1,224,224,7,7,3,64,2,,,110,110,12100\n"
              "CB3a_1,56,56,1,1,256,128,2,,,,,\n"
              "FC6,1,1,1,1,2048,1000,1,,,,,")
    assert shapes(read_topology(p)) == [
        ("Conv1", 110 * 110, 64, 147, 1),       # ceil(219 / 2) = 110, the file's own Eh
        ("CB3a_1", 29 * 29, 128, 256, 1),       # ceil(57 / 2) = 29 (PyTorch, padding 0: 28)
        ("FC6", 1, 1000, 2048, 1),
    ]


def test_read_conv_topology_depthwise_and_two_strides(tmp_path):
    # a 'DP' layer is depthwise in SCALE-Sim: Channels single-channel convolutions;
    # write_topo_file's header has separate stride height and width columns
    p = write(tmp_path, "dw.csv",
              "Layer name,IFMAP height,IFMAP width,Filter height,Filter width,Channels,"
              "Num filter,Stride height,Stride width,\n"
              "Conv2_DP,114,114,3,3,32,1,1,1,\n"
              "Wide,10,20,3,3,4,8,1,2,\n")
    assert shapes(read_topology(p)) == [("Conv2_DP", 112 * 112, 1, 9, 32),
                                        ("Wide", 8 * 10, 8, 36, 1)]  # ceil(19 / 2) = 10


def test_read_topology_forced_format(tmp_path):
    p = write(tmp_path, "t.csv", "name,a,b,c\nx,2,3,4\n")
    assert shapes(read_topology(p, fmt="gemm")) == [("x", 2, 3, 4, 1)]
    with pytest.raises(ValueError, match=r"^fmt must be one of auto, gemm, conv, not 'xls'$"):
        read_topology(p, fmt="xls")


CONV_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
               "Num Filter, Strides,\n")


@pytest.mark.parametrize("name, text, msg", [
    ("gemm_nonint.csv", "Layer,M,N,K\nA,1,2,3\nB,4,abc,6\n",
     r":3: column 'N' must be a positive integer, not 'abc'$"),
    ("gemm_missing.csv", "Layer, M, N, K,\nA, 1, 2,\n",
     r":2: missing column 'K' \(the row has 2 values after the name\)$"),
    ("gemm_zero.csv", "Layer,M,N,K\nA,0,2,3\n",
     r":2: column 'M' must be a positive integer, not 0$"),
    ("conv_missing_stride.csv", CONV_HEADER + "C1,28,28,1,1,256,256\n",
     r":2: missing column 'Strides' \(the row has 6 values after the name\)$"),
    ("conv_empty.csv", CONV_HEADER + "\nC1,28,,1,1,256,256,1,\n",
     r":3: column 'IFMAP Width' is empty$"),
    ("conv_float.csv", CONV_HEADER + "C1,28,28,1,1,2.5,256,1,\n",
     r":2: column 'Channels' must be a positive integer, not '2\.5'$"),
    ("conv_filter.csv", CONV_HEADER + "C1,5,5,7,7,3,8,1,\n",
     r":2: Filter Height 7 is larger than IFMAP Height 5$"),
    ("header.csv", "name,rows,cols,depth\nA,1,2,3\n",
     r":1: header 'name, rows, cols, depth' is neither SCALE-Sim's GEMM header "
     r"'Layer, M, N, K' nor its conv header 'Layer name, IFMAP Height, .*Strides,'$"),
])
def test_read_topology_errors(tmp_path, name, text, msg):
    p = write(tmp_path, name, text)
    with pytest.raises(ValueError, match="^" + re.escape(str(p)) + msg):
        read_topology(p)


def test_read_topology_empty_and_missing(tmp_path):
    p = write(tmp_path, "empty.csv", "\n,,,\n")
    with pytest.raises(ValueError, match=r"empty\.csv: empty topology file"):
        read_topology(p)
    with pytest.raises(FileNotFoundError):
        read_topology(tmp_path / "nope.csv")


# --------------------------------------------------------------------------------------------
# SCALE-Sim .cfg (contents as in scale-sim-v2's configs/)

SCALE_CFG = SCALESIM_CFG  # scale-sim-v2's configs/scale.cfg, shipped by `nybble example`

GOOGLE_CFG = """\
[general]
run_name = GoogleTPU_v1_ws

[architecture_presets]
ArrayHeight:    256
ArrayWidth:     256
IfmapSramSzkB:    6144
FilterSramSzkB:   6144
OfmapSramSzkB:    2048
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Dataflow : ws
Bandwidth : 10
MemoryBanks: 1

[run_presets]
InterfaceBandwidth: CALC
"""


def test_read_scalesim_cfg(tmp_path):
    assert read_scalesim_cfg(write(tmp_path, "scale.cfg", SCALE_CFG)) == {
        "rows": 32, "cols": 32, "dataflow": "os", "ifmap_sram_kb": 64, "filter_sram_kb": 64,
        "ofmap_sram_kb": 64, "bandwidth": [64], "run_name": "scale_example_run_32x32_os"}
    g = read_scalesim_cfg(write(tmp_path, "google.cfg", GOOGLE_CFG))
    assert (g["rows"], g["cols"], g["dataflow"], g["ofmap_sram_kb"]) == (256, 256, "ws", 2048)


def test_read_scalesim_cfg_minimal(tmp_path):
    cfg = read_scalesim_cfg(write(tmp_path, "m.cfg", "[architecture_presets]\n"
                                  "arrayheight = 8\narraywidth = 4\ndataflow = WS\n"))
    assert cfg == {"rows": 8, "cols": 4, "dataflow": "ws", "ifmap_sram_kb": None,
                   "filter_sram_kb": None, "ofmap_sram_kb": None, "bandwidth": None,
                   "run_name": None}
    is_cfg = read_scalesim_cfg(write(tmp_path, "i.cfg", "[architecture_presets]\n"
                                     "arrayheight = 8\narraywidth = 4\ndataflow = is\n"))
    assert is_cfg["dataflow"] == "is"      # input-stationary: the streaming top runs it


@pytest.mark.parametrize("edit, msg", [
    (("Dataflow : os", "Dataflow : rs"),
     r":14: unknown Dataflow 'rs'; SCALE-Sim's are os, ws, is$"),
    (("ArrayWidth:     32", "ArrayWidth:     3x2"),
     r":6: ArrayWidth must be a positive integer, not '3x2'$"),
    (("OfmapSramSzkB:   64", "OfmapSramSzkB:   0"),
     r":9: OfmapSramSzkB must be a positive integer, not 0$"),
    (("ArrayHeight:    32\n", ""), r": \[architecture_presets\] is missing ArrayHeight$"),
    (("Dataflow : os\n", ""), r": \[architecture_presets\] is missing Dataflow \(os, ws or is\)$"),
    (("[architecture_presets]", "[arch]"), r": missing section \[architecture_presets\] "),
    (("[general]\n", ""), r":1: not a valid \.cfg file: no \[section\] header before "
                           r"'run_name = scale_example_run_32x32_os'$"),
    (("MemoryBanks:   1", "MemoryBanks"), r":15: not a valid \.cfg file: cannot parse "
                                         r"'MemoryBanks' \(expected 'Key: value' or 'Key = value'\)$"),
    (("MemoryBanks:   1", "ArrayWidth: 16"), r":15: not a valid \.cfg file: While reading .*"
                                            r"option 'arraywidth' in section "
                                            r"'architecture_presets' already exists$"),
    (("Bandwidth : 64", "Bandwidth : fast"),
     r":13: Bandwidth must be integers separated by commas, not 'fast'$"),
])
def test_read_scalesim_cfg_errors(tmp_path, edit, msg):
    old, new = edit
    assert old in SCALE_CFG
    p = write(tmp_path, "scale.cfg", SCALE_CFG.replace(old, new))
    with pytest.raises(ValueError, match="^" + re.escape(str(p)) + msg):
        read_scalesim_cfg(p)


def test_scalesim_sram_depths():
    cfg = {"ifmap_sram_kb": 64, "filter_sram_kb": 32, "ofmap_sram_kb": 64}
    # A word: 16 int4 codes = 64 bits; B word: 8 codes = 32 bits; C word: 8 x 32-bit accumulators
    assert scalesim_sram_depths(cfg, rows=16, cols=8, a_bits=4, b_bits=4, acc_bits=32) == {
        "a_depth": 64 * 8192 // 64, "b_depth": 32 * 8192 // 32, "c_depth": 64 * 8192 // 256}
    assert scalesim_sram_depths({"ifmap_sram_kb": None, "filter_sram_kb": None,
                                 "ofmap_sram_kb": 1}, rows=1, cols=1, a_bits=4, b_bits=4,
                                acc_bits=32) == {"c_depth": 256}
    with pytest.raises(ValueError, match=r"^ofmap_sram_kb = 1 kB holds no C word of 16384 bits$"):
        scalesim_sram_depths({"ofmap_sram_kb": 1}, rows=1, cols=256, a_bits=4, b_bits=4,
                             acc_bits=64)
