"""Block quantizers: real tensors to element codes plus the scales hardware stores.

Schemes (``quantize(x, scheme, axis=...)``; blocks run along ``axis``):

=================  ==========  ===========  =====================================================
scheme             element     block        scale as stored
=================  ==========  ===========  =====================================================
int4_tensor        int4        whole tensor float32 amax/7, symmetric
int4_channel       int4        whole axis   float32 amax/7 per slice along ``axis``
int4_g<N>          int4        N            float32 amax/7 per group
e3m0_g<N>          e3m0        N            float32 amax/16 per group (power-of-two elements)
nf4_g<N>           nf4         N            float32 amax per group (bitsandbytes absmax)
bitmod_g<N>        bitmod_*    N            float32 amax/max|type| per group, plus the chosen
                                            BitMoD type per group (``extra["types"]``, min MSE)
mxfp4, mxfp6_e2m3, e2m1, ...  32            E8M0 byte: floor(log2 amax) - emax_elem + 127
mxfp6_e3m2, mxfp8_e4m3, mxfp8_e5m2, mxint8                (all-zero block: 0x00)
nvfp4              e2m1        16           E4M3 block scale code, per-tensor float32 scale
q4_0, q4_1, q4_k   ggml        32/32/256    llama.cpp's own (fp16 d, m; 6-bit sub-scales)
=================  ==========  ===========  =====================================================

NVFP4 convention (NVIDIA TransformerEngine / torchao): the tensor scale is the *decode* scale
``ts = float32(amax_tensor / (448 * 6))``; the block scale is ``sb = e4m3(amax_block / 6 / ts)``
(round to nearest even, saturating; e4m3 subnormals allowed, no clamp at 2^-6); elements are
``e2m1(x / (sb * ts))``; the value is ``element * sb * ts``.

Partial blocks: when the block size does not divide the axis, Nybble pads the last block with
zeros (its scale comes from the elements present; the padding is not stored). The ggml schemes
refuse instead, because llama.cpp's byte layout has no partial blocks.
"""

from dataclasses import dataclass, field
import re

import numpy as np

from .codec import encode, decode, ROUNDING_MODES
from .formats import get_format, BITMOD_SPECIAL, check_integral
from .errors import ParameterError, ParameterTypeError
from . import ggml

__all__ = ["QuantizedTensor", "Scheme", "quantize", "get_scheme", "scheme_names",
           "from_bytes", "BITMOD_TYPES"]

BITMOD_TYPES = tuple(BITMOD_SPECIAL)  # type index stored per group -> format name

_MX_EMAX = {"float4_e2m1fn": 2, "float6_e2m3fn": 2, "float6_e3m2fn": 4,
            "float8_e4m3fn": 8, "float8_e5m2": 15, "int8_mx": 0}


@dataclass(frozen=True)
class Scheme:
    """A quantization scheme: element format, block size and scale representation.

    ``block`` is the number of consecutive elements along the axis that share a scale;
    ``None`` means the whole axis (per channel), ``0`` the whole tensor.
    ``scale_kind`` is ``"float32"``, ``"e8m0"``, ``"e4m3"`` or ``"ggml"``.
    """

    name: str
    element: str
    block: int | None
    scale_kind: str
    symmetric: bool = True

    @property
    def elem_fmt(self):
        return get_format(self.element)


_STATIC = {
    "int4_tensor": Scheme("int4_tensor", "int4", 0, "float32"),
    "int4_channel": Scheme("int4_channel", "int4", None, "float32"),
    "mxfp4": Scheme("mxfp4", "float4_e2m1fn", 32, "e8m0"),
    "mxfp6_e2m3": Scheme("mxfp6_e2m3", "float6_e2m3fn", 32, "e8m0"),
    "mxfp6_e3m2": Scheme("mxfp6_e3m2", "float6_e3m2fn", 32, "e8m0"),
    "mxfp8_e4m3": Scheme("mxfp8_e4m3", "float8_e4m3fn", 32, "e8m0"),
    "mxfp8_e5m2": Scheme("mxfp8_e5m2", "float8_e5m2", 32, "e8m0"),
    "mxint8": Scheme("mxint8", "int8_mx", 32, "e8m0"),
    "nvfp4": Scheme("nvfp4", "float4_e2m1fn", 16, "e4m3"),
    "q4_0": Scheme("q4_0", "int4", 32, "ggml"),
    "q4_1": Scheme("q4_1", "uint4", 32, "ggml", symmetric=False),
    "q4_k": Scheme("q4_k", "uint4", 256, "ggml", symmetric=False),
}
_GROUPED = {"int4": "int4", "e3m0": "e3m0", "nf4": "nf4", "bitmod": "bitmod_er_pos"}
_GROUP_RE = re.compile(r"^(int4|e3m0|nf4|bitmod)_g(\d+)$")


def scheme_names():
    """The scheme names (grouped ones shown with their most common group size)."""
    return sorted(_STATIC) + ["int4_g32", "int4_g128", "e3m0_g32", "nf4_g64", "bitmod_g128"]


def get_scheme(scheme):
    """Look up a scheme by name (``int4_g<N>`` etc. parse N); raises ``ValueError``."""
    if isinstance(scheme, Scheme):
        return scheme
    if not isinstance(scheme, str):
        raise ParameterTypeError(f"scheme must be a scheme name, not {scheme!r}")
    if scheme in _STATIC:
        return _STATIC[scheme]
    m = _GROUP_RE.match(scheme)
    if m:
        n = int(m.group(2))
        if n < 1:
            raise ParameterError(f"group size in {scheme!r} must be at least 1")
        return Scheme(scheme, _GROUPED[m.group(1)], n, "float32")
    raise ParameterError(f"unknown scheme {scheme!r}; valid schemes: {', '.join(sorted(_STATIC))}, "
                     "int4_g<N>, e3m0_g<N>, nf4_g<N>, bitmod_g<N> (N = group size, e.g. 32)")


@dataclass(frozen=True, eq=False)
class QuantizedTensor:
    """Element codes plus the scales that hardware stores.

    ``codes`` has the tensor's shape.  ``scales`` has the tensor's shape with ``axis`` replaced
    by the number of blocks (a 0-d array for per-tensor schemes), in the stored representation
    (E8M0 / E4M3 code bytes, float32, or fp16 for ggml).  ``tensor_scale`` is NVFP4's float32
    per-tensor scale (None otherwise).  ``extra`` holds the rest of a scheme's state (BitMoD
    type per group, ggml mins).
    """

    codes: np.ndarray
    scales: np.ndarray
    scheme: Scheme
    shape: tuple
    axis: int
    tensor_scale: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def block(self):
        """Elements per block along ``axis`` (the whole axis for per-channel/tensor schemes)."""
        b = self.scheme.block
        return self.shape[self.axis] if not b else b

    @property
    def n_blocks(self):
        return -(-self.shape[self.axis] // self.block)

    @property
    def elem_fmt(self):
        return self.scheme.elem_fmt

    def block_scale_values(self):
        """Each block's scale as float64 (exact), shaped like :attr:`scales` along ``axis``.

        Per-tensor schemes are broadcast to every block of every slice.
        """
        kind = self.scheme.scale_kind
        if kind == "e8m0":
            s = decode(self.scales, "e8m0")
        elif kind == "e4m3":
            s = decode(self.scales, "float8_e4m3fn")
        elif kind == "float32":
            s = self.scales.astype(np.float64)
        else:
            s = self.extra["d_values"]
        if s.ndim == 0:
            shp = list(self.shape)
            shp[self.axis] = 1
            s = np.broadcast_to(s, shp)
        return s

    def element_values(self):
        """Element values (float64) before scaling, with the tensor's shape."""
        if self.scheme.element.startswith("bitmod"):
            types = _expand_blocks(self.extra["types"], self.axis, self.block, self.shape)
            tables = np.stack([get_format(t).values for t in BITMOD_TYPES])
            return tables[types, self.codes.astype(np.int64)]
        return decode(self.codes, self.elem_fmt)

    def dequantize(self):
        """The real values this tensor represents (float64)."""
        if self.scheme.scale_kind == "ggml":
            return _ggml_dequantize(self, ggml)
        s = _expand_blocks(self.block_scale_values(), self.axis, self.block, self.shape)
        v = self.element_values() * s
        if self.tensor_scale is not None:
            v = v * np.float64(self.tensor_scale)
        return v

    def to_bytes(self):
        """llama.cpp's byte layout (q4_0, q4_1, q4_k, and mxfp4 as ggml's MXFP4 blocks:
        E8M0 byte, then 16 bytes with element j in the low nibble and j + 16 in the high
        one), blocks in the row order of ``moveaxis(x, axis, -1)`` flattened to 2-D."""
        if self.scheme.name == "mxfp4":
            return _mxfp4_to_bytes(self)
        if self.scheme.scale_kind != "ggml":
            raise ParameterError(f"to_bytes is defined for the ggml schemes q4_0, q4_1, q4_k "
                             f"and mxfp4, not {self.scheme.name!r}")
        return _ggml_to_bytes(self, ggml)


def _expand_blocks(per_block, axis, block, shape):
    """Repeat per-block values ``block`` times along ``axis`` and trim to ``shape``."""
    rep = np.repeat(per_block, block, axis=axis)
    idx = [slice(None)] * len(shape)
    idx[axis] = slice(0, shape[axis])
    return rep[tuple(idx)]


def _check_input(x, axis):
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.floating)
                                 or np.issubdtype(x.dtype, np.integer)):
        raise ParameterTypeError(f"x must be a real (float or integer) array, not dtype {x.dtype}")
    if x.ndim == 0:
        raise ParameterError("x must have at least one dimension, not a scalar")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        i = tuple(int(v) for v in np.argwhere(~np.isfinite(x))[0])
        raise ParameterError(f"x must be finite: element at index {i} is {x[i]}")
    axis = check_integral("axis", axis, -x.ndim, x.ndim - 1) % x.ndim
    return x, axis


def _blocked(x, axis, block):
    """View ``x`` as (..., n_blocks, block) along ``axis``, zero-padding the last block."""
    xm = np.moveaxis(x, axis, -1)
    n = xm.shape[-1]
    nb = -(-n // block)
    pad = nb * block - n
    if pad:
        xm = np.concatenate([xm, np.zeros(xm.shape[:-1] + (pad,))], axis=-1)
    return xm.reshape(xm.shape[:-1] + (nb, block)), n


def _unblocked(xb, axis, n):
    xm = xb.reshape(xb.shape[:-2] + (-1,))[..., :n]
    return np.moveaxis(xm, -1, axis)


def _safe_div(x, s):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s == 0, 0.0, x / np.where(s == 0, 1.0, s))


_F32 = np.finfo(np.float32)


def _range_error(sch, need, kind, lo, hi):
    """``need``: the scales x needs (>= 0); they leave ``lo .. hi``, what ``kind`` holds."""
    nz = np.asarray(need, dtype=np.float64)
    nz = nz[nz > 0]
    raise ParameterError(
        f"x needs {sch.name} scales from {nz.min():g} to {nz.max():g}, but its {kind} scales "
        f"hold {lo:g} .. {hi:g}: rescale x (it would quantize to "
        f"{'inf / NaN' if nz.max() > hi else 'zeros'})")


def _float32_scale(sch, s):
    """``s`` (float64 scales, >= 0) as float32, or an error when a scale overflows float32
    or a nonzero one underflows to 0 (every element would become NaN or 0)."""
    s = np.asarray(s, dtype=np.float64)
    if s.size and (s.max() > _F32.max or (s[s > 0].size and s[s > 0].min()
                                          < _F32.smallest_subnormal)):
        _range_error(sch, s, "float32", float(_F32.smallest_subnormal), float(_F32.max))
    return s.astype(np.float32)


def quantize(x, scheme, *, axis=-1, rounding="nearest_even", seed=None):
    """Quantize ``x`` with ``scheme``, blocks along ``axis`` (see the module table).

    For a GEMM operand, block along the reduction dimension K: ``axis=-1`` for A (M x K),
    ``axis=0`` for B (K x N).  ``rounding`` applies to the elements (scales follow their
    scheme's rule); ``seed`` drives stochastic rounding.
    """
    sch = get_scheme(scheme)
    if rounding not in ROUNDING_MODES:
        raise ParameterError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, not {rounding!r}")
    x, axis = _check_input(x, axis)
    if x.size == 0 and sch.block != 0:
        # a block scale needs a block: there is nothing to scale (per-tensor schemes pass)
        raise ParameterError(f"x is empty (shape {x.shape}); {sch.name} has a scale per block "
                             "along the axis and needs at least one element")
    if sch.scale_kind == "ggml":
        if rounding != "nearest_even":
            raise ParameterError(f"{sch.name} uses llama.cpp's own rounding; rounding must be "
                             f"'nearest_even', not {rounding!r}")
        # llama.cpp stores fp16 scales, about max|block| / 8 (q4_0, q4_1) or below
        amax = np.max(np.abs(_blocked(x, axis, sch.block)[0]), axis=-1) / 8 if x.size else \
            np.zeros(0)
        if amax.size and (amax.max() > 65504 or (amax[amax > 0].size and
                                                 amax[amax > 0].min() < 2.0 ** -24)):
            _range_error(sch, amax, "fp16", 2.0 ** -24, 65504)
        return _ggml_quantize(x, sch, axis, ggml)
    enc = dict(rounding=rounding, seed=seed)
    if sch.block == 0:  # per tensor
        amax = np.max(np.abs(x)) if x.size else 0.0
        scale = _float32_scale(sch, np.array(amax) / 7.0)
        codes = encode(_safe_div(x, np.float64(scale)), sch.element, **enc)
        return QuantizedTensor(codes, np.array(scale), sch, x.shape, axis)
    block = x.shape[axis] if sch.block is None else sch.block
    xb, n = _blocked(x, axis, block)
    amax = np.max(np.abs(xb), axis=-1, keepdims=True)
    extra, tensor_scale = {}, None
    if sch.scale_kind == "e8m0":
        emax = _MX_EMAX[sch.elem_fmt.name]
        _, ex = np.frexp(amax)
        e = np.where(amax == 0, -127, ex - 1 - emax)
        if e.size and (e.max() > 127 or e.min() < -127):
            _range_error(sch, np.where(amax == 0, 0, np.ldexp(1.0, e)), "E8M0",
                         2.0 ** -127, 2.0 ** 127)
        stored = (e + 127).astype(np.uint8)
        codes = encode(np.ldexp(xb, -e), sch.element, **enc)
    elif sch.scale_kind == "e4m3":
        t_amax = float(np.max(np.abs(x))) if x.size else 0.0
        ts = _float32_scale(sch, np.array(t_amax / (448.0 * 6.0))) if t_amax > 0 \
            else np.float32(1.0)
        tensor_scale = float(ts)
        stored = encode(amax / 6.0 / np.float64(ts), "float8_e4m3fn")
        sb = decode(stored, "float8_e4m3fn") * np.float64(ts)
        codes = encode(_safe_div(xb, sb), sch.element, **enc)
    elif sch.element.startswith("bitmod"):
        codes, stored, types = _bitmod_groups(xb, amax, enc)
        extra["types"] = np.moveaxis(types[..., 0], -1, axis)
    else:
        f = get_format(sch.element)
        top = min(f.max_value, -f.min_value)  # symmetric: int4 uses +-7, not -8
        stored = _float32_scale(sch, amax / top)
        codes = encode(_safe_div(xb, stored.astype(np.float64)), sch.element, **enc)
    codes = _unblocked(codes, axis, n)
    scales = np.moveaxis(stored[..., 0], -1, axis)
    return QuantizedTensor(codes, scales, sch, x.shape, axis, tensor_scale, extra)


def _bitmod_groups(xb, amax, enc):
    """Per group, the BitMoD type (and scale amax/max|type|) with the least squared error."""
    best = None
    for t_index, t in enumerate(BITMOD_TYPES):
        fmt = get_format(t)
        for top in sorted({12.0, fmt.max_abs}):
            s = (amax / top).astype(np.float32)
            c = encode(_safe_div(xb, s.astype(np.float64)), fmt, **enc)
            err = np.sum((fmt.values[c.astype(np.int64)] * s - xb) ** 2, axis=-1, keepdims=True)
            if best is None:
                best = [err, c, s, np.full(err.shape, t_index, np.uint8)]
                continue
            better = err < best[0]
            best[0] = np.where(better, err, best[0])
            best[1] = np.where(better, c, best[1])
            best[2] = np.where(better, s, best[2])
            best[3] = np.where(better, t_index, best[3])
    return best[1], best[2], best[3]


# -- ggml schemes --------------------------------------------------------------------------

def _as_rows(x, axis):
    xm = np.moveaxis(x, axis, -1)
    return xm.reshape(-1, xm.shape[-1]), xm.shape


def _from_rows(a, mshape, axis):
    return np.moveaxis(a.reshape(mshape[:-1] + (a.shape[-1],)), -1, axis)


def _ggml_quantize(x, sch, axis, ggml):
    rows, mshape = _as_rows(x, axis)
    k = rows.shape[1]
    if k % sch.block:
        raise ParameterError(f"{sch.name} needs the blocked axis to be a multiple of {sch.block} "
                         f"(llama.cpp has no partial blocks); axis {axis} has {k} elements")
    if sch.name == "q4_0":
        q, d = ggml.q4_0_quantize(rows)
        codes = ((q.astype(np.int64) - 8) & 0xF).astype(np.uint8)  # int4 code of q - 8
        extra = {}
        scales = d
    elif sch.name == "q4_1":
        q, d, m = ggml.q4_1_quantize(rows)
        codes, scales, extra = q.astype(np.uint8), d, {"mins": _from_rows(m, mshape, axis)}
    else:
        q, d, dmin, sc, mn = ggml.q4_k_quantize(rows)
        codes, scales = q.astype(np.uint8), sc
        extra = {"d": _from_rows(d, mshape, axis), "dmin": _from_rows(dmin, mshape, axis),
                 "mins": _from_rows(mn, mshape, axis)}
    codes = _from_rows(codes, mshape, axis)
    scales = _from_rows(scales, mshape, axis)
    qt = QuantizedTensor(codes, scales, sch, x.shape, axis, None, extra)
    if sch.name == "q4_0":
        extra["d_values"] = scales.astype(np.float64)
    return qt


def _ggml_parts(qt):
    rows = lambda a: _as_rows(a, qt.axis)[0]
    name = qt.scheme.name
    if name == "q4_0":
        q = ((qt.codes.astype(np.int64) + 8) & 0xF).astype(np.uint8)
        return (rows(q), rows(qt.scales))
    if name == "q4_1":
        return (rows(qt.codes), rows(qt.scales), rows(qt.extra["mins"]))
    return (rows(qt.codes), rows(qt.extra["d"]), rows(qt.extra["dmin"]), rows(qt.scales),
            rows(qt.extra["mins"]))


def _ggml_dequantize(qt, ggml):
    parts = _ggml_parts(qt)
    out = getattr(ggml, f"{qt.scheme.name}_dequantize")(*parts)
    mshape = np.moveaxis(np.empty(qt.shape, np.uint8), qt.axis, -1).shape
    return _from_rows(out, mshape, qt.axis)


def _ggml_to_bytes(qt, ggml):
    return getattr(ggml, f"{qt.scheme.name}_to_bytes")(*_ggml_parts(qt))


def _mxfp4_to_bytes(qt):
    codes, _ = _as_rows(qt.codes, qt.axis)
    scales, _ = _as_rows(qt.scales, qt.axis)
    if codes.shape[1] % 32:
        raise ParameterError(f"ggml MXFP4 bytes need the blocked axis to be a multiple of 32, "
                         f"not {codes.shape[1]}")
    q = codes.reshape(-1, 32).astype(np.uint8)
    qs = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([scales.reshape(-1, 1).astype(np.uint8), qs], axis=1).tobytes()


def _mxfp4_from_bytes(data, n_rows, k, shape, mshape, axis):
    n_blocks = n_rows * (k // 32)
    d = np.frombuffer(data, np.uint8).reshape(n_blocks, 17)
    q = np.concatenate([d[:, 1:] & 0xF, d[:, 1:] >> 4], axis=1).reshape(n_rows, k)
    e = d[:, 0].reshape(n_rows, k // 32)
    return QuantizedTensor(_from_rows(q, mshape, axis), _from_rows(e, mshape, axis),
                           _STATIC["mxfp4"], shape, axis)


_BYTES = {"q4_0": (32, 18), "q4_1": (32, 20), "q4_k": (256, 144), "mxfp4": (32, 17)}


def from_bytes(data, scheme, shape, *, axis=-1):
    """Read llama.cpp bytes (q4_0, q4_1, q4_k, or ggml MXFP4 for mxfp4) into a
    QuantizedTensor.

    ``shape`` is the tensor's shape; blocks run along ``axis``.  A wrong byte count raises
    ``ValueError`` with the expected and actual lengths.
    """
    sch = get_scheme(scheme)
    if sch.name not in _BYTES:
        raise ParameterError(f"from_bytes reads q4_0, q4_1, q4_k and mxfp4, not {sch.name!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ParameterTypeError(f"data must be bytes, not {type(data).__name__}")
    shape = tuple(check_integral("shape entry", s, 1) for s in shape)
    axis = check_integral("axis", axis, -len(shape), len(shape) - 1) % len(shape)
    mshape = np.moveaxis(np.empty(shape, np.uint8), axis, -1).shape
    n_rows = int(np.prod(mshape[:-1]))
    block, nbytes = _BYTES[sch.name]
    if mshape[-1] % block:
        raise ParameterError(f"{sch.name} bytes hold whole blocks of {block}: the blocked axis "
                         f"has {mshape[-1]} elements")
    want = n_rows * (mshape[-1] // block) * nbytes
    if len(data) != want:
        raise ParameterError(f"{sch.name} data for shape {shape} must be {want} bytes "
                         f"({nbytes} per block of {block}), not {len(data)}")
    if sch.name == "mxfp4":
        return _mxfp4_from_bytes(bytes(data), n_rows, mshape[-1], shape, mshape, axis)
    parts = getattr(ggml, f"{sch.name}_from_bytes")(bytes(data), n_rows, mshape[-1])
    dummy = np.zeros(shape)
    rows = lambda a: _from_rows(a, mshape, axis)
    if sch.name == "q4_0":
        q, d = parts
        codes = ((q.astype(np.int64) - 8) & 0xF).astype(np.uint8)
        return QuantizedTensor(rows(codes), rows(d), sch, dummy.shape, axis, None,
                               {"d_values": rows(d).astype(np.float64)})
    if sch.name == "q4_1":
        q, d, m = parts
        return QuantizedTensor(rows(q.astype(np.uint8)), rows(d), sch, shape, axis, None,
                               {"mins": rows(m)})
    q, d, dmin, sc, mn = parts
    return QuantizedTensor(rows(q.astype(np.uint8)), rows(sc), sch, shape, axis, None,
                           {"d": rows(d), "dmin": rows(dmin), "mins": rows(mn)})
