"""llama.cpp (ggml) 4-bit block formats Q4_0, Q4_1 and Q4_K: quantize, pack, unpack, dequantize.

Every function takes or returns 2-D arrays ``(rows, K)``; blocks run along the last axis and K
must be a multiple of the block size (32 for Q4_0/Q4_1, 256 for Q4_K).  Inputs are cast to
float32 first and all arithmetic is float32 in the order of llama.cpp's C reference, because
that is what makes the stored bytes identical to llama.cpp's.

========  =======  ======  ===================================================================
scheme    block    bytes   stored fields and value
========  =======  ======  ===================================================================
Q4_0      32       18      fp16 d; 32 x uint4 q.  value = (q - 8) * d
Q4_1      32       20      fp16 d, fp16 m; 32 x uint4 q.  value = d * q + m
Q4_K      256      144     fp16 d, fp16 dmin; 8 x (6-bit sc, 6-bit mn); 256 x uint4 q.
                           value = (d * sc) * q - dmin * mn  (per 32-element sub-block)
========  =======  ======  ===================================================================

Byte layouts (little-endian fp16):

* Q4_0 / Q4_1: scale field(s), then 16 bytes; byte j holds element j in the low nibble and
  element j + 16 in the high nibble.
* Q4_K: d, dmin, 12 scale bytes, 128 q bytes.  Scale bytes 0-3 hold sc[0..3] in bits 0-5 and
  the top two bits of sc[4..7] in bits 6-7; bytes 4-7 likewise mn[0..3] / mn[4..7]; bytes 8-11
  hold the low nibbles of sc[4..7] (bits 0-3) and mn[4..7] (bits 4-7) (ggml's
  ``get_scale_min_k4``).  Each 64 elements take 32 q bytes: elements 0-31 of the chunk in the
  low nibbles, 32-63 in the high nibbles.

Rounding: Q4_0 and Q4_1 truncate ``x/d + 8.5`` resp. ``(x - m)/d + 0.5`` (round half up, as
llama.cpp's ``(int8_t)`` cast does), scales are rounded to fp16 to nearest even.  Q4_K rounds
to nearest even (ggml's ``nearest_int``) and fits its scales by the search of
``make_qkx2_quants``.  Non-finite inputs are not supported (the C code gives unspecified
codes for them).

Exactness: Q4_0 and Q4_1 reproduce gguf-py's ``quantize`` byte for byte; all three
dequantizers reproduce gguf-py's ``dequantize`` exactly.  Q4_K quantization follows
``quantize_row_q4_K_ref`` operation by operation (sequential float32 sums, IEEE division,
no fused multiply-add), so it matches a C build without FMA contraction (x86-64 baseline,
``-ffp-contract=off``); builds that fuse multiply-adds (GCC with ``-march=native`` on an FMA
machine, typical aarch64 builds) round some sums differently and then pick other codes in a
fraction of blocks: the C reference itself is not bit-identical across platforms.
"""

import numpy as np
from .errors import ParameterError

__all__ = [
    "BLOCK", "BLOCK_BYTES",
    "q4_0_quantize", "q4_0_to_bytes", "q4_0_from_bytes", "q4_0_dequantize",
    "q4_1_quantize", "q4_1_to_bytes", "q4_1_from_bytes", "q4_1_dequantize",
    "q4_k_quantize", "q4_k_to_bytes", "q4_k_from_bytes", "q4_k_dequantize",
]

BLOCK = {"q4_0": 32, "q4_1": 32, "q4_k": 256}
BLOCK_BYTES = {"q4_0": 18, "q4_1": 20, "q4_k": 144}

_SUB = 32           # Q4_K sub-block length
_NSUB = 8           # sub-blocks per Q4_K super-block
_CHUNK = 8192       # Q4_K sub-blocks processed per vectorised pass (1 MiB per work array)
_F32 = np.float32


# ---------------------------------------------------------------------------- helpers

def _check_k(scheme, k):
    blk = BLOCK[scheme]
    if k % blk:
        raise ParameterError(f"{scheme}: K={k} is not a multiple of the block size {blk}")


def _as_rows(scheme, x):
    x = np.asarray(x)
    if x.ndim != 2:
        raise ParameterError(f"{scheme}: expected a 2-D array (rows, K), got shape {x.shape}")
    _check_k(scheme, x.shape[1])
    # llama.cpp quantizes float32 rows; casting first keeps float64 input bit-compatible.
    return x.astype(_F32)


def _pack_halves(q, half):
    """(n, 2*half) nibbles -> (n, half) bytes: first half low nibble, second half high."""
    q = np.asarray(q, dtype=np.uint8)
    return q[:, :half] | (q[:, half:] << np.uint8(4))


def _unpack_halves(b):
    """Inverse of :func:`_pack_halves`."""
    return np.concatenate([b & np.uint8(0x0F), b >> np.uint8(4)], axis=1)


def _check_nibbles(scheme, q):
    q = np.asarray(q)
    if q.size and (q.min() < 0 or q.max() > 15):
        raise ParameterError(f"{scheme}: q values must lie in 0..15")
    return q.astype(np.uint8)


def _f16_bytes(a):
    """fp16 array (n,) -> (n, 2) little-endian bytes."""
    return np.asarray(a, dtype=np.float16).astype("<f2").reshape(-1, 1).view(np.uint8)


def _f16_from(b):
    """(n, 2) little-endian bytes -> fp16 (n,)."""
    return np.ascontiguousarray(b).view("<f2").reshape(-1).astype(np.float16)


def _blocks_from_bytes(scheme, data, rows, k):
    _check_k(scheme, k)
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) \
        else np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    nbytes = BLOCK_BYTES[scheme]
    expected = rows * (k // BLOCK[scheme]) * nbytes
    if buf.size != expected:
        raise ParameterError(f"{scheme}: expected {expected} bytes for {rows}x{k} "
                         f"({rows * (k // BLOCK[scheme])} blocks of {nbytes}), got {buf.size}")
    return buf.reshape(-1, nbytes)


def _seq_sum(a):
    """Sum over axis 0 strictly left to right in float32, as a C ``for`` loop accumulates.

    numpy's own reductions use pairwise summation, which rounds differently."""
    s = a[0].copy()
    for i in range(1, a.shape[0]):
        s += a[i]
    return s


def _nearest_int(v):
    # ggml's nearest_int adds 1.5*2^23 in float32 and reads the mantissa: round half to
    # even, like rint, for |v| < 2^22 (the range it asserts; beyond it C returns junk).
    return np.rint(v)


# ---------------------------------------------------------------------------- Q4_0

def q4_0_quantize(x):
    """Quantize to Q4_0, bit-exact with llama.cpp's ``quantize_row_q4_0_ref``.

    Per block of 32: ``d = fp16(v / -8)`` where ``v`` is the first element of largest
    magnitude (so v maps to code 0, i.e. -8); ``q = min(15, trunc(x * (1/d) + 8.5))`` with the
    float32 ``d`` before fp16 rounding.  Returns ``q`` uint8 (rows, K) in 0..15 and ``d``
    float16 (rows, K/32).
    """
    x = _as_rows("q4_0", x)
    rows, k = x.shape
    b = x.reshape(-1, 32)
    imax = np.abs(b).argmax(axis=1)[:, None]          # first max, as the C ``<`` scan
    vmax = np.take_along_axis(b, imax, axis=1)
    d = vmax / _F32(-8)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, _F32(0), _F32(1) / d).astype(_F32)
    q = np.minimum(np.trunc(b * inv + _F32(8.5)), 15).astype(np.uint8)
    return q.reshape(rows, k), d.astype(np.float16).reshape(rows, k // 32)


def q4_0_to_bytes(q, d):
    """Pack Q4_0 fields into llama.cpp's 18-byte blocks (fp16 d, 16 nibble-pair bytes)."""
    q = _check_nibbles("q4_0", q)
    _check_k("q4_0", q.shape[-1])
    qs = _pack_halves(q.reshape(-1, 32), 16)
    return np.concatenate([_f16_bytes(d), qs], axis=1).tobytes()


def q4_0_from_bytes(data, rows, K):
    """Unpack Q4_0 bytes into ``(q, d)`` as returned by :func:`q4_0_quantize`."""
    blk = _blocks_from_bytes("q4_0", data, rows, K)
    q = _unpack_halves(blk[:, 2:]).reshape(rows, K)
    return q, _f16_from(blk[:, :2]).reshape(rows, K // 32)


def q4_0_dequantize(q, d):
    """``(q - 8) * d`` in float32 (ggml's ``dequantize_row_q4_0``), returned as float64."""
    q = np.asarray(q)
    rows, k = q.shape
    _check_k("q4_0", k)
    qf = (q.astype(np.int16) - 8).astype(_F32).reshape(-1, 32)
    d32 = np.asarray(d, dtype=np.float16).astype(_F32).reshape(-1, 1)
    return (d32 * qf).reshape(rows, k).astype(np.float64)


# ---------------------------------------------------------------------------- Q4_1

def q4_1_quantize(x):
    """Quantize to Q4_1, bit-exact with llama.cpp's ``quantize_row_q4_1_ref``.

    Per block of 32: ``d = fp16((max - min) / 15)``, ``m = fp16(min)``,
    ``q = min(15, trunc((x - min) * (1/d) + 0.5))`` with the float32 d and min.  Returns ``q``
    uint8 (rows, K), ``d`` and ``m`` float16 (rows, K/32).
    """
    x = _as_rows("q4_1", x)
    rows, k = x.shape
    b = x.reshape(-1, 32)
    mn = b.min(axis=1, keepdims=True)
    mx = b.max(axis=1, keepdims=True)
    d = (mx - mn) / _F32(15)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, _F32(0), _F32(1) / d).astype(_F32)
    q = np.minimum(np.trunc((b - mn) * inv + _F32(0.5)), 15).astype(np.uint8)
    nb = k // 32
    return (q.reshape(rows, k), d.astype(np.float16).reshape(rows, nb),
            mn.astype(np.float16).reshape(rows, nb))


def q4_1_to_bytes(q, d, m):
    """Pack Q4_1 fields into llama.cpp's 20-byte blocks (fp16 d, fp16 m, 16 bytes)."""
    q = _check_nibbles("q4_1", q)
    _check_k("q4_1", q.shape[-1])
    qs = _pack_halves(q.reshape(-1, 32), 16)
    return np.concatenate([_f16_bytes(d), _f16_bytes(m), qs], axis=1).tobytes()


def q4_1_from_bytes(data, rows, K):
    """Unpack Q4_1 bytes into ``(q, d, m)`` as returned by :func:`q4_1_quantize`."""
    blk = _blocks_from_bytes("q4_1", data, rows, K)
    q = _unpack_halves(blk[:, 4:]).reshape(rows, K)
    nb = K // 32
    return q, _f16_from(blk[:, 0:2]).reshape(rows, nb), _f16_from(blk[:, 2:4]).reshape(rows, nb)


def q4_1_dequantize(q, d, m):
    """``d * q + m`` in float32 (ggml's ``dequantize_row_q4_1``), returned as float64."""
    q = np.asarray(q)
    rows, k = q.shape
    _check_k("q4_1", k)
    qf = q.astype(_F32).reshape(-1, 32)
    d32 = np.asarray(d, dtype=np.float16).astype(_F32).reshape(-1, 1)
    m32 = np.asarray(m, dtype=np.float16).astype(_F32).reshape(-1, 1)
    return (d32 * qf + m32).reshape(rows, k).astype(np.float64)


# ---------------------------------------------------------------------------- Q4_K

def _make_qkx2_quants(x, w, nmax=15, rmin=-1.0, rdelta=0.1, nstep=20):
    """ggml's ``make_qkx2_quants`` (use_mad=false), vectorised over sub-blocks.

    ``x`` and ``w`` are float32 (n, B): element index first so that every C accumulation
    loop becomes a strictly sequential sum over axis 0.  Fits ``x ~ scale*L - the_min`` with
    L in 0..nmax: starting from ``min = min(x, 0)`` it tries nstep+1 inverse scales
    ``(nmax + rmin + rdelta*is)/(max - min)``, solves weighted least squares for
    (scale, min) at each and keeps the lowest weighted squared error.  As in C, an accepted
    step replaces ``min``, which later steps then use for both ``x - min`` and
    ``max - min``.  Returns ``(L, scale, the_min)``: L float32 (n, B), scale, the_min (B,).
    """
    fnmax = _F32(nmax)
    # np.minimum/maximum against an array run ~4x faster than against a scalar
    lo, hi = np.zeros_like(x), np.full_like(x, fnmax)
    mn = np.minimum(x.min(axis=0), _F32(0))           # the offset never goes positive
    mx = x.max(axis=0)
    sum_w = _seq_sum(w)
    sum_x = _seq_sum(w * x)
    flat = mx == mn                                   # C returns early: L = 0, scale = 0
    one = _F32(1)
    best_is = fnmax / np.where(flat, one, mx - mn)
    best_base = mn                                    # the min the kept codes were built on
    scale = one / best_is
    L = np.minimum(_nearest_int(best_is * (x - mn)), hi)
    diff = scale * L + mn - x
    best = _seq_sum(w * (diff * diff))

    la, wl, t = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    for step in range(nstep + 1):
        iscale = (_F32(rmin) + _F32(rdelta) * _F32(step) + fnmax) / np.where(flat, one, mx - mn)
        np.subtract(x, mn, out=la)
        la *= iscale
        np.rint(la, out=la)                           # nearest_int: half to even
        np.maximum(la, lo, out=la)                    # x - min < 0 once min has moved
        np.minimum(la, hi, out=la)
        np.multiply(w, la, out=wl)
        sum_l = _seq_sum(wl)
        sum_l2 = _seq_sum(np.multiply(wl, la, out=t))
        sum_xl = _seq_sum(np.multiply(wl, x, out=t))
        D = sum_w * sum_l2 - sum_l * sum_l
        with np.errstate(divide="ignore", invalid="ignore"):
            t_scale = (sum_w * sum_xl - sum_x * sum_l) / D
            t_min = (sum_l2 * sum_x - sum_l * sum_xl) / D
            pos = t_min > 0
            # a positive offset is not representable: refit the scale alone through zero
            t_scale = np.where(pos, sum_xl / sum_l2, t_scale)
        t_min = np.where(pos, _F32(0), t_min)
        np.multiply(la, t_scale, out=t)               # diff = this_scale*L + this_min - x
        t += t_min
        t -= x
        t *= t
        t *= w
        cur = _seq_sum(t)
        take = (D > 0) & (cur < best)
        best = np.where(take, cur, best)
        best_is = np.where(take, iscale, best_is)
        best_base = np.where(take, mn, best_base)
        scale = np.where(take, t_scale, scale)
        mn = np.where(take, t_min, mn)

    # Rebuild the kept codes from their iscale and base instead of copying them every step.
    L = np.maximum(_nearest_int(best_is * (x - best_base)), lo)
    L = np.where(flat, _F32(0), np.minimum(L, hi))
    scale = np.where(flat, _F32(0), scale)
    return L, scale, -mn


def q4_k_quantize(x):
    """Quantize to Q4_K following llama.cpp's ``quantize_row_q4_K_ref`` (no imatrix).

    Per 32-element sub-block, weights ``sqrt(mean(x^2)) + |x|`` feed
    :func:`_make_qkx2_quants` (nmax 15, rmin -1, rdelta 0.1, 20 steps).  Per 256-element
    super-block the sub-block scales and mins become 6-bit codes
    ``min(63, nearest(63/max * s))`` under ``d = fp16(max_scale/63)`` and
    ``dmin = fp16(max_min/63)``; then every element is requantized to
    ``clip(nearest((x + dmin*mn) / (d*sc)), 0, 15)`` (sub-blocks with ``d*sc == 0`` keep
    the first-stage codes, as in C).  All arithmetic is float32 in C source order without
    FMA contraction.  Returns ``q`` uint8 (rows, K); ``d``, ``dmin`` float16 (rows, K/256);
    ``sc``, ``mn`` uint8 in 0..63 (rows, K/32).
    """
    x = _as_rows("q4_k", x)
    rows, k = x.shape
    sub = x.reshape(-1, _SUB)                           # (B, 32) sub-blocks
    nsub = sub.shape[0]
    L = np.empty((nsub, _SUB), dtype=_F32)
    scales = np.empty(nsub, dtype=_F32)
    mins = np.empty(nsub, dtype=_F32)
    # Chunks of sub-blocks keep the (32, chunk) working arrays in cache.
    for s in range(0, nsub, _CHUNK):
        xs = np.ascontiguousarray(sub[s:s + _CHUNK].T)  # (32, n): element-major
        av_x = np.sqrt(_seq_sum(xs * xs) / _F32(32))
        w = av_x + np.abs(xs)
        l1, scales[s:s + _CHUNK], mins[s:s + _CHUNK] = _make_qkx2_quants(xs, w)
        L[s:s + _CHUNK] = l1.T

    scales = scales.reshape(-1, _NSUB)
    mins = mins.reshape(-1, _NSUB)
    # C starts both maxima at +0.0 and keeps it unless a value is strictly larger.
    max_scale = scales.max(axis=1, keepdims=True)
    max_scale = np.where(max_scale > 0, max_scale, _F32(0))
    max_min = mins.max(axis=1, keepdims=True)
    max_min = np.where(max_min > 0, max_min, _F32(0))
    with np.errstate(divide="ignore"):
        inv_scale = np.where(max_scale > 0, _F32(63) / max_scale, _F32(0))
        inv_min = np.where(max_min > 0, _F32(63) / max_min, _F32(0))

    def six_bit(v):
        # C stores nearest_int() into a uint8_t (wraps mod 256), then takes MIN(63, .)
        i = _nearest_int(v).astype(np.int64) & 0xFF
        return np.minimum(i, 63).astype(np.uint8)

    sc = six_bit(inv_scale * scales)
    mn = six_bit(inv_min * mins)
    d16 = (max_scale / _F32(63)).astype(np.float16)
    dmin16 = (max_min / _F32(63)).astype(np.float16)

    # Second pass: requantize every element against the stored (rounded) scale and min.
    dsub = (d16.astype(_F32) * sc.astype(_F32)).reshape(-1, 1)
    msub = (dmin16.astype(_F32) * mn.astype(_F32)).reshape(-1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        l2 = np.clip(_nearest_int((sub + msub) / dsub), 0, 15)
    q = np.where(dsub != 0, l2, L).astype(np.uint8)

    return (q.reshape(rows, k), d16.reshape(rows, k // 256), dmin16.reshape(rows, k // 256),
            sc.reshape(rows, k // 32), mn.reshape(rows, k // 32))


def _pack_scales_k4(sc, mn):
    """(n, 8) 6-bit scales and mins -> (n, 12) bytes in ``get_scale_min_k4`` layout."""
    lo_s, hi_s = sc[:, :4], sc[:, 4:]
    lo_m, hi_m = mn[:, :4], mn[:, 4:]
    b0 = lo_s | ((hi_s >> 4) << 6)
    b1 = lo_m | ((hi_m >> 4) << 6)
    b2 = (hi_s & 0x0F) | ((hi_m & 0x0F) << 4)
    return np.concatenate([b0, b1, b2], axis=1).astype(np.uint8)


def _unpack_scales_k4(b):
    """Inverse of :func:`_pack_scales_k4`."""
    b0, b1, b2 = b[:, 0:4], b[:, 4:8], b[:, 8:12]
    sc = np.concatenate([b0 & 63, (b2 & 0x0F) | ((b0 >> 6) << 4)], axis=1)
    mn = np.concatenate([b1 & 63, (b2 >> 4) | ((b1 >> 6) << 4)], axis=1)
    return sc.astype(np.uint8), mn.astype(np.uint8)


def q4_k_to_bytes(q, d, dmin, sc, mn):
    """Pack Q4_K fields into llama.cpp's 144-byte ``block_q4_K``."""
    q = _check_nibbles("q4_k", q)
    _check_k("q4_k", q.shape[-1])
    sc = np.asarray(sc).reshape(-1, _NSUB)
    mn = np.asarray(mn).reshape(-1, _NSUB)
    if sc.size and (sc.min() < 0 or sc.max() > 63 or mn.min() < 0 or mn.max() > 63):
        raise ParameterError("q4_k: sc and mn must lie in 0..63")
    # four 64-element chunks per block, each packed as 32 low / 32 high nibbles
    qs = _pack_halves(q.reshape(-1, 64), 32).reshape(-1, 128)
    scales = _pack_scales_k4(sc.astype(np.uint8), mn.astype(np.uint8))
    return np.concatenate([_f16_bytes(d), _f16_bytes(dmin), scales, qs], axis=1).tobytes()


def q4_k_from_bytes(data, rows, K):
    """Unpack Q4_K bytes into ``(q, d, dmin, sc, mn)`` as returned by :func:`q4_k_quantize`."""
    blk = _blocks_from_bytes("q4_k", data, rows, K)
    sc, mn = _unpack_scales_k4(blk[:, 4:16])
    q = _unpack_halves(blk[:, 16:].reshape(-1, 32)).reshape(rows, K)
    nb = K // 256
    return (q, _f16_from(blk[:, 0:2]).reshape(rows, nb), _f16_from(blk[:, 2:4]).reshape(rows, nb),
            sc.reshape(rows, K // 32), mn.reshape(rows, K // 32))


def q4_k_dequantize(q, d, dmin, sc, mn):
    """``(d*sc) * q - dmin*mn`` in float32 (ggml's ``dequantize_row_q4_K``), as float64."""
    q = np.asarray(q)
    rows, k = q.shape
    _check_k("q4_k", k)
    d32 = np.asarray(d, dtype=np.float16).astype(_F32).reshape(-1, 1)
    m32 = np.asarray(dmin, dtype=np.float16).astype(_F32).reshape(-1, 1)
    d1 = (d32 * np.asarray(sc).reshape(-1, _NSUB).astype(_F32)).reshape(-1, 1)
    m1 = (m32 * np.asarray(mn).reshape(-1, _NSUB).astype(_F32)).reshape(-1, 1)
    y = d1 * q.astype(_F32).reshape(-1, _SUB) - m1
    return y.reshape(rows, k).astype(np.float64)
