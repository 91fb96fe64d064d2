"""Workloads as lists of GEMMs: built-in networks and SCALE-Sim topology / config files.

Every workload is a list of :class:`Layer` records, one GEMM each::

    C[M, N] = A[M, K] @ B[K, N]        (repeated ``count`` times)

A is the streamed operand (activations, SCALE-Sim's *ifmap*), B the stationary-or-streamed
second operand (weights, SCALE-Sim's *filter*), C the result (*ofmap*).  M is the number of
output rows (tokens, or output pixels for a convolution), N the number of output columns
(output features / filters), K the reduction length.  MACs per layer are ``m * n * k * count``.

This is SCALE-Sim's convention too: its GEMM loader turns a row ``Layer, M, N, K`` into a
convolution with an ``M x K`` ifmap, a ``1 x K`` filter, one channel and N filters, so M is its
output-pixel count (rows of the ifmap operand matrix), N its filter count and K its window size
(``scalesim/topology_utils.py``, ``load_arrays_gemm``).

Built-in workloads: :func:`llama_7b` (one decoder layer, prefill) and :func:`resnet50`
(torchvision ResNet-50, every convolution and the FC as im2col GEMMs).  File readers:
:func:`read_topology` (SCALE-Sim GEMM or conv topology CSV) and :func:`read_scalesim_cfg`
(SCALE-Sim ``.cfg``).  Malformed files raise ``ValueError`` as ``"FILE:LINE: what is wrong"``.
"""

import configparser
import csv
from dataclasses import dataclass
import numbers
import os
import re
from nybble.sw.errors import InputFileError, ParameterError, ParameterTypeError

__all__ = [
    "Layer", "WORKLOADS", "get_workload", "llama_7b", "llama_7b_decode", "LLAMA_7B_LAYERS",
    "resnet50",
    "read_topology", "read_scalesim_cfg", "scalesim_sram_depths", "total_macs",
]


def _positive_int(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(f"{owner}.{name} must be an integer, not {value!r}")
    value = int(value)
    if value < 1:
        raise ParameterError(f"{owner}.{name} must be at least 1, not {value}")
    return value


@dataclass(frozen=True)
class Layer:
    """One GEMM of a workload: ``C[m, n] = A[m, k] @ B[k, n]``, run ``count`` times.

    name : label for reports.
    m : rows of A and C (tokens, output pixels); n : columns of B and C (output features,
        filters); k : reduction length (input features, ``channels * kh * kw``).
    count : how many identical GEMMs (attention heads, batch entries, depthwise channels).
    """

    name: str
    m: int
    n: int
    k: int
    count: int = 1

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise ParameterTypeError(f"Layer.name must be a string, not {self.name!r}")
        for f in ("m", "n", "k", "count"):
            object.__setattr__(self, f, _positive_int("Layer", f, getattr(self, f)))

    @property
    def macs(self):
        """Multiply-accumulates of all ``count`` GEMMs."""
        return self.m * self.n * self.k * self.count


def total_macs(layers):
    """Multiply-accumulates of a whole workload (counts included)."""
    return sum(layer.macs for layer in layers)


# --------------------------------------------------------------------------------------------
# LLaMA-7B

def llama_7b(seq_len=2048, batch=1):
    """The GEMMs of one LLaMA-7B decoder layer in prefill (every token of the prompt at once).

    d_model 4096, 32 heads of 128, SwiGLU FFN of 11008.  With T = ``seq_len * batch`` tokens:

    ============  =========  =======  =======  ==============  ==============================
    layer         M          N        K        count           A @ B
    ============  =========  =======  =======  ==============  ==============================
    q/k/v/o_proj  T          4096     4096     1 each          X @ W_q (etc.)
    attn_scores   seq_len    seq_len  128      32 * batch      Q_h @ K_h^T, one per head
    attn_values   seq_len    128      seq_len  32 * batch      P_h @ V_h, one per head
    ffn_gate/up   T          11008    4096     1 each          X @ W_gate, X @ W_up
    ffn_down      T          4096     11008    1               (silu(G) * U) @ W_down
    ============  =========  =======  =======  ==============  ==============================

    Attention is counted in full (``seq_len x seq_len`` scores): a causal mask halves the useful
    work but a dense array computes the masked half anyway.  Softmax, RMSNorm, RoPE and the
    SwiGLU product are not GEMMs and are not listed.  At ``seq_len=2048, batch=1`` this is
    4 * 34.36 + 2 * 17.18 + 3 * 92.34 = 448.8 GMAC (448,824,082,432 MACs).
    """
    seq_len = _positive_int("llama_7b", "seq_len", seq_len)
    batch = _positive_int("llama_7b", "batch", batch)
    d_model, heads, head_dim, ffn = 4096, 32, 128, 11008
    t = seq_len * batch
    return [
        Layer("q_proj", t, d_model, d_model),
        Layer("k_proj", t, d_model, d_model),
        Layer("v_proj", t, d_model, d_model),
        Layer("attn_scores", seq_len, seq_len, head_dim, heads * batch),
        Layer("attn_values", seq_len, head_dim, seq_len, heads * batch),
        Layer("o_proj", t, d_model, d_model),
        Layer("ffn_gate", t, ffn, d_model),
        Layer("ffn_up", t, ffn, d_model),
        Layer("ffn_down", t, d_model, ffn),
    ]


#: decoder layers of LLaMA-7B (a token passes through all of them)
LLAMA_7B_LAYERS = 32


def llama_7b_decode(seq_len=2048, batch=1):
    """The GEMMs of one LLaMA-7B decoder layer generating one token per sequence (decode), with
    ``seq_len`` tokens already in the KV cache and ``batch`` sequences.

    Every projection is a GEMV batch: ``M = batch``; attention reads the cache per head:

    ============  =====  =======  =======  ==========  ===================================
    layer         M      N        K        count       A @ B
    ============  =====  =======  =======  ==========  ===================================
    q/k/v/o_proj  batch  4096     4096     1 each      x @ W_q (etc.)
    attn_scores   1      seq_len  128      32 * batch  q_h @ K_h^T (the cached keys)
    attn_values   1      128      seq_len  32 * batch  p_h @ V_h (the cached values)
    ffn_gate/up   batch  11008    4096     1 each      x @ W_gate, x @ W_up
    ffn_down      batch  4096     11008    1           (silu(g) * u) @ W_down
    ============  =====  =======  =======  ==========  ===================================
    """
    seq_len = _positive_int("llama_7b_decode", "seq_len", seq_len)
    batch = _positive_int("llama_7b_decode", "batch", batch)
    d_model, heads, head_dim, ffn = 4096, 32, 128, 11008
    return [
        Layer("q_proj", batch, d_model, d_model),
        Layer("k_proj", batch, d_model, d_model),
        Layer("v_proj", batch, d_model, d_model),
        Layer("attn_scores", 1, seq_len, head_dim, heads * batch),
        Layer("attn_values", 1, head_dim, seq_len, heads * batch),
        Layer("o_proj", batch, d_model, d_model),
        Layer("ffn_gate", batch, ffn, d_model),
        Layer("ffn_up", batch, ffn, d_model),
        Layer("ffn_down", batch, d_model, ffn),
    ]


# --------------------------------------------------------------------------------------------
# ResNet-50

def _conv_out(size, kernel, stride, pad):
    # PyTorch's Conv2d: floor((H + 2p - k) / s) + 1
    return (size + 2 * pad - kernel) // stride + 1


def resnet50(batch=1, image=224):
    """Every convolution of torchvision's ResNet-50 (v1.5) and its FC layer, as im2col GEMMs.

    A convolution with ``C_in`` input channels, ``C_out`` filters of ``kh x kw``, stride s and
    padding p on an ``H x W`` input becomes ``M = batch * H_out * W_out``,
    ``N = C_out``, ``K = C_in * kh * kw`` with PyTorch's ``H_out = floor((H + 2p - kh) / s) + 1``.
    The FC is ``M = batch, N = 1000, K = 2048``.

    The architecture is torchvision's ``resnet50``: conv1 7x7/2 pad 3, max-pool 3x3/2 pad 1,
    bottleneck stages of 3, 4, 6, 3 blocks (widths 64, 128, 256, 512, expansion 4) with the
    stride on the 3x3 convolution (v1.5) and a 1x1 downsample convolution on the first block of
    each stage: 53 convolutions + 1 FC, 4.089 GMAC at 224x224 (torchvision reports 4.09 GFLOPS
    for ``ResNet50_Weights.IMAGENET1K_V1``, counting one multiply-add as one FLOP).
    Layer names follow torchvision's module names (``layer2.0.conv2``, ``layer2.0.downsample``).
    """
    batch = _positive_int("resnet50", "batch", batch)
    image = _positive_int("resnet50", "image", image)
    layers = []

    def conv(name, size, c_in, c_out, kernel, stride, pad):
        out = _conv_out(size, kernel, stride, pad)
        layers.append(Layer(name, batch * out * out, c_out, c_in * kernel * kernel))
        return out

    size = conv("conv1", image, 3, 64, 7, 2, 3)
    size = _conv_out(size, 3, 2, 1)                      # max-pool
    c_in = 64
    for stage, (blocks, width, stride) in enumerate(
            [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)], start=1):
        for b in range(blocks):
            s = stride if b == 0 else 1
            prefix = f"layer{stage}.{b}"
            conv(f"{prefix}.conv1", size, c_in, width, 1, 1, 0)
            mid = conv(f"{prefix}.conv2", size, width, width, 3, s, 1)
            conv(f"{prefix}.conv3", mid, width, 4 * width, 1, 1, 0)
            if b == 0:
                conv(f"{prefix}.downsample", size, c_in, 4 * width, 1, s, 0)
            size, c_in = mid, 4 * width
    layers.append(Layer("fc", batch, 1000, c_in))
    return layers


WORKLOADS = {"llama-7b": llama_7b, "resnet50": resnet50}


def get_workload(name, **params):
    """A built-in workload by name (``"llama-7b"``, ``"resnet50"``), with its parameters."""
    try:
        fn = WORKLOADS[name]
    except KeyError:
        raise ParameterError(f"workload must be one of {', '.join(WORKLOADS)}, not {name!r}") from None
    return fn(**params)


# --------------------------------------------------------------------------------------------
# SCALE-Sim topology CSV files

_GEMM_COLUMNS = ("M", "N", "K")
_CONV_COLUMNS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                 "Channels", "Num Filter", "Strides")


def _header_kind(cells):
    low = [c.strip().lower() for c in cells]
    if len(low) >= 4 and low[1:4] == ["m", "n", "k"]:
        return "gemm"
    if len(low) >= 8 and "ifmap" in low[1] and "filter" in low[3]:
        return "conv"
    return None


def _cell_int(path, line, row, col, name):
    if col >= len(row):
        present = len(row) - 1
        raise ParameterError(f"{path}:{line}: missing column {name!r} "
                         f"(the row has {present} value{'s' if present != 1 else ''} after the name)")
    text = row[col]
    if text == "":
        raise ParameterError(f"{path}:{line}: column {name!r} is empty")
    try:
        value = int(text)
    except ValueError:
        raise ParameterError(f"{path}:{line}: column {name!r} must be a positive integer, "
                         f"not {text!r}") from None
    if value < 1:
        raise ParameterError(f"{path}:{line}: column {name!r} must be a positive integer, not {value}")
    return value


def _trim(cells):
    # a trailing comma (or several: Resnet50.csv pads rows to its header) adds empty cells
    while cells and cells[-1] == "":
        cells.pop()
    return cells


def _ceil_div(a, b):
    return -(-a // b)


def _check_file(path, what):
    if not os.path.isfile(path):
        raise InputFileError(f"{what} file {path!r} does not exist")


def read_topology(path, fmt="auto"):
    """Read a SCALE-Sim topology CSV into a list of :class:`Layer`.

    Two formats, told apart by the header (or forced with ``fmt="gemm"`` / ``"conv"``):

    GEMM (``topologies/GEMM_mnk/*.csv``), header ``Layer, M, N, K``: one GEMM per row with
        SCALE-Sim's meaning, which is this module's: M = output rows (ifmap rows), N = output
        columns (filters), K = reduction (window), e.g. ``QKT,1024,1024,64``.
    conv (``topologies/conv_nets/*.csv``), header ``Layer name, IFMAP Height, IFMAP Width,
        Filter Height, Filter Width, Channels, Num Filter, Strides,``: converted as SCALE-Sim
        does, with no padding (the IFMAP size in the file is taken as already padded) and
        SCALE-Sim's rounding ``out = ceil((H - Fh + S) / S)``, i.e. ``(H - Fh) / S + 1`` when S
        divides ``H - Fh`` and one more otherwise (SCALE-Sim's ``topo_calc_hyperparams``);
        then ``M = out_h * out_w``, ``N = Num Filter``, ``K = Fh * Fw * Channels``.  A header
        with a ninth ``Stride width`` column (SCALE-Sim's ``write_topo_file``) gives separate
        strides.  As in SCALE-Sim, a layer whose name contains ``DP`` is depthwise: it runs
        as ``Channels`` single-channel convolutions (here ``count = Channels``, K = Fh * Fw).

    Cells are stripped of spaces; a trailing comma (most of SCALE-Sim's own files end every row
    with one) and columns after the required ones (SCALE-Sim's ``N:M`` sparsity ratio, notes such
    as ``#dw``) are ignored; rows with no values are skipped.  Unlike SCALE-Sim (which drops
    the last cell of every row, so a GEMM row without a trailing comma loses its K), rows with
    and without the trailing comma read the same.

    Raises ``ValueError("FILE:LINE: ...")`` for an unknown header, a missing or non-integer
    column, or a filter larger than its input.
    """
    path = os.fspath(path)
    if fmt not in ("auto", "gemm", "conv"):
        raise ParameterError(f"fmt must be one of auto, gemm, conv, not {fmt!r}")
    _check_file(path, "SCALE-Sim topology")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        rows = [(_trim([c.strip() for c in row]), reader.line_num) for row in reader]
    rows = [(cells, n) for cells, n in rows if cells]
    if not rows:
        raise ParameterError(f"{path}: empty topology file (no header, no layers)")
    header, hline = rows[0]
    kind = _header_kind(header)
    if fmt != "auto":
        kind = fmt
    elif kind is None:
        raise ParameterError(
            f"{path}:{hline}: header {', '.join(header)!r} is neither SCALE-Sim's GEMM header "
            f"'Layer, M, N, K' nor its conv header 'Layer name, {', '.join(_CONV_COLUMNS)},'")
    stride_w_col = (kind == "conv" and len(header) > 8 and "stride" in header[8].lower()
                    and "width" in header[8].lower())
    layers = []
    for cells, line in rows[1:]:
        name = cells[0] or f"line{line}"
        if kind == "gemm":
            m, n, k = (_cell_int(path, line, cells, i + 1, c) for i, c in enumerate(_GEMM_COLUMNS))
            layers.append(Layer(name, m, n, k))
            continue
        h, w, fh, fw, ch, nf, sh = (_cell_int(path, line, cells, i + 1, c)
                                   for i, c in enumerate(_CONV_COLUMNS))
        sw = _cell_int(path, line, cells, 8, "Stride width") if stride_w_col else sh
        if fh > h:
            raise ParameterError(f"{path}:{line}: Filter Height {fh} is larger than IFMAP Height {h}")
        if fw > w:
            raise ParameterError(f"{path}:{line}: Filter Width {fw} is larger than IFMAP Width {w}")
        out_h = _ceil_div(h - fh + sh, sh)
        out_w = _ceil_div(w - fw + sw, sw)
        count = 1
        if "DP" in name:
            count, ch = ch, 1
        layers.append(Layer(name, out_h * out_w, nf, fh * fw * ch, count))
    return layers


# --------------------------------------------------------------------------------------------
# SCALE-Sim .cfg files

_DATAFLOWS = {"os": "os", "ws": "ws", "is": "is"}


def _cfg_line(lines, section, key):
    """1-based line of ``key`` in ``[section]`` (configparser does not keep line numbers)."""
    current = None
    key_re = re.compile(rf"^\s*{re.escape(key)}\s*[:=]", re.IGNORECASE)
    for i, text in enumerate(lines, start=1):
        s = text.strip()
        if s.startswith("[") and s.endswith("]"):
            current = s[1:-1].strip().lower()
        elif current == section.lower() and key_re.match(text):
            return i
    return None


def read_scalesim_cfg(path):
    """Read a SCALE-Sim ``.cfg`` file (INI: ``[general]``, ``[architecture_presets]``, ...).

    Returns a dict::

        rows, cols        ArrayHeight, ArrayWidth (-> ArrayConfig.rows, .cols)
        dataflow          Dataflow: "os", "ws" or "is" (-> ArrayConfig.dataflow; "is" runs
                          on the streaming top only)
        ifmap_sram_kb     IfmapSramSzkB  (A operand buffer, kB; None if absent)
        filter_sram_kb    FilterSramSzkB (B operand buffer, kB; None if absent)
        ofmap_sram_kb     OfmapSramSzkB  (C result buffer, kB; None if absent)
        bandwidth         Bandwidth as a list of ints (words/cycle per bank; None if absent)
        run_name          [general] run_name (None if absent)

    :func:`scalesim_sram_depths` turns the SRAM sizes into ``a_depth``, ``b_depth``,
    ``c_depth``.  Missing ArrayHeight / ArrayWidth / Dataflow and non-integer sizes are
    rejected:
    ``ValueError("FILE:LINE: ...")``.  Keys are case-insensitive, as in SCALE-Sim (configparser).
    """
    path = os.fspath(path)
    _check_file(path, "SCALE-Sim config")
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    lines = text.splitlines()
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        parser.read_string(text, source=path)
    except configparser.Error as e:
        line = getattr(e, "lineno", None)
        if isinstance(e, configparser.MissingSectionHeaderError):
            msg = f"no [section] header before {lines[line - 1].strip()!r}"
        elif isinstance(e, configparser.ParsingError) and e.errors:
            line = e.errors[0][0]      # (line number, repr of the line)
            msg = (f"cannot parse {lines[line - 1].strip()!r} "
                   f"(expected 'Key: value' or 'Key = value')")
        else:
            msg = " ".join(str(e).split())
        raise ParameterError(f"{path}:{line}: not a valid .cfg file: {msg}" if line else
                         f"{path}: not a valid .cfg file: {msg}") from None
    section = "architecture_presets"
    if not parser.has_section(section):
        raise ParameterError(f"{path}: missing section [{section}] "
                         f"(SCALE-Sim configs give ArrayHeight, ArrayWidth, Dataflow there)")
    sec = parser[section]

    def where(key):
        line = _cfg_line(lines, section, key)
        return f"{path}:{line}" if line else path

    def get_int(key, required):
        if key not in sec:
            if required:
                raise ParameterError(f"{path}: [{section}] is missing {key}")
            return None
        raw = sec[key].strip()
        try:
            value = int(raw)
        except ValueError:
            raise ParameterError(f"{where(key)}: {key} must be a positive integer, not {raw!r}") from None
        if value < 1:
            raise ParameterError(f"{where(key)}: {key} must be a positive integer, not {value}")
        return value

    rows = get_int("ArrayHeight", True)
    cols = get_int("ArrayWidth", True)
    if "Dataflow" not in sec:
        raise ParameterError(f"{path}: [{section}] is missing Dataflow (os, ws or is)")
    df = sec["Dataflow"].strip().lower()
    if df not in _DATAFLOWS:
        raise ParameterError(f"{where('Dataflow')}: unknown Dataflow {sec['Dataflow'].strip()!r}; "
                         f"SCALE-Sim's are os, ws, is")
    bandwidth = None
    if "Bandwidth" in sec:
        raw = sec["Bandwidth"].strip()
        try:
            bandwidth = [int(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            raise ParameterError(f"{where('Bandwidth')}: Bandwidth must be integers separated by "
                             f"commas, not {raw!r}") from None
    run_name = parser.get("general", "run_name", fallback=None)
    return {
        "rows": rows, "cols": cols, "dataflow": _DATAFLOWS[df],
        "ifmap_sram_kb": get_int("IfmapSramSzkB", False),
        "filter_sram_kb": get_int("FilterSramSzkB", False),
        "ofmap_sram_kb": get_int("OfmapSramSzkB", False),
        "bandwidth": bandwidth,
        "run_name": run_name.strip() if run_name else None,
    }


def scalesim_sram_depths(cfg, *, rows, cols, a_bits, b_bits, acc_bits):
    """Buffer depths (``a_depth``, ``b_depth``, ``c_depth`` in words) holding SCALE-Sim's SRAMs.

    SCALE-Sim counts every operand as one byte; here the kB are physical storage and a word is
    what :class:`~nybble.hw.config.ArrayConfig` says: A one ``a_bits`` code per PE row, B one
    ``b_bits`` code per PE column, C one ``acc_bits`` accumulator per PE column.  So 64 kB of
    ifmap SRAM in front of 16 rows of int4 is ``64 * 8192 // 64 = 8192`` A words.  Returns only
    the depths whose size the config gives.
    """
    out = {}
    for key, field, word_bits in (("ifmap_sram_kb", "a_depth", rows * a_bits),
                                  ("filter_sram_kb", "b_depth", cols * b_bits),
                                  ("ofmap_sram_kb", "c_depth", cols * acc_bits)):
        kb = cfg.get(key)
        if kb is None:
            continue
        depth = kb * 8192 // word_bits
        if depth < 1:
            raise ParameterError(f"{key} = {kb} kB holds no {field[0].upper()} word of {word_bits} bits")
        out[field] = depth
    return out
