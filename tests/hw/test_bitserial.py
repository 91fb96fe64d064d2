# amaranth: UnusedElaboratable=no
"""The column decoder and the lockstep bit-serial PE in the Amaranth simulator: every
(selector, code) decoded as the spec's table says, every (data type, code) with edge and
random int8 activations accumulated bit for bit as the spec's model, beats longer than the
MAC (a slower neighbour), forwarding only on ``advance``, the errors."""
import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from nybble.hw.bitserial import (BitSerialDecoder, LockstepBitSerialPE, max_shift_amount,
                                 serial_weight_layout, step_bits)
from nybble.hw.config import ArrayConfig
from nybble.hw.kinds import make_pe, pe_spec
from nybble.hw.pe import BitSerialPE
from nybble.hw.spec import BITSERIAL_DTYPES


def _spec(**kw):
    return pe_spec("bitserial", lockstep=True, **kw)


def test_decoder_matches_the_spec_table_for_every_selector_and_code():
    spec = _spec()
    dec = BitSerialDecoder(spec)
    got = {}

    async def bench(ctx):
        for s in range(1 << spec.sel_bits):
            for code in range(1 << spec.b_bits):
                ctx.set(dec.sel, s)
                ctx.set(dec.b, code)
                got[s, code] = tuple(ctx.get(getattr(dec.w, f))
                                     for f in ("neg", "mag", "shift", "cycles"))

    sim = Simulator(dec)
    sim.add_testbench(bench)
    sim.run()
    for (s, code), row in got.items():
        if s < len(spec.decode):
            rows, cyc = spec.decode[s]
            want = (*rows[code], cyc)
        else:   # past the data types: a zero weight of one cycle
            want = (0, 0, 0, 1)
        assert row == want, f"sel {s} code {code}: decoded {row}, spec says {want}"


def test_layout_widths_follow_the_slowest_type():
    spec = _spec()
    lay = serial_weight_layout(spec)
    # mag: int4's 7; cycles: 3; shift: e3m0's largest (6) + the last step (2) < 16
    assert {n: f.width for n, f in lay} == {"neg": 1, "mag": 3, "shift": 4, "cycles": 2}
    assert max_shift_amount(spec) == 6 + 2
    assert step_bits(spec) == 2


@pytest.mark.parametrize("sel", range(len(BITSERIAL_DTYPES)))
@pytest.mark.parametrize("slow_neighbour", [False, True])
def test_lockstep_pe_equals_the_model_for_every_code(sel, slow_neighbour):
    """One dot product per code (a few activations each, first on the first), every beat as
    long as the MAC or as the slowest type's (3 cycles: a slower PE elsewhere)."""
    spec = _spec()
    pe, dec = LockstepBitSerialPE(spec), BitSerialDecoder(spec)
    rng = np.random.default_rng(100 + sel)
    acts = [0x80, 0x7F, 0xFF, 0x01, 0x00] + list(rng.integers(0, 256, 3))
    macs = [(int(a), sel, code, int(i == 0)) for code in range(16)
            for i, a in enumerate(acts)]
    top = Module()   # decoder and PE in one simulation
    top.submodules.pe, top.submodules.dec = pe, dec
    out = []

    async def bench(ctx):
        for a, s, code, first in macs:
            ctx.set(dec.sel, s)
            ctx.set(dec.b, code)
            cyc = ctx.get(dec.w.cycles)
            n = spec.latency if slow_neighbour else cyc
            for step in range(n):
                ctx.set(pe.a, a)
                ctx.set(pe.w, ctx.get(dec.w))
                ctx.set(pe.valid, 1)
                ctx.set(pe.first, first)
                ctx.set(pe.step, step)
                ctx.set(pe.advance, int(step == n - 1))
                await ctx.tick()
            out.append((ctx.get(pe.acc), ctx.get(pe.a_out)))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for idx, (a, s, code, first) in enumerate(macs):
        dot = idx - idx % len(acts)
        a_codes = np.array([[m[0] for m in macs[dot:idx + 1]]])
        b_codes = np.array([[m[2]] for m in macs[dot:idx + 1]])
        want = int(spec.model(a_codes, b_codes, [sel] * (idx - dot + 1))[0, 0])
        acc, a_out = out[idx]
        where = f"{BITSERIAL_DTYPES[sel]} code {code} a {a} (MAC {idx - dot} of the dot product)"
        assert acc == want, f"{where}: acc {acc}, model {want}"
        assert a_out == a, f"{where}: a_out {a_out} after advance"


def test_no_valid_no_change():
    spec = _spec()
    pe = LockstepBitSerialPE(spec)
    log = []

    async def bench(ctx):
        ctx.set(pe.w.mag, 7)
        ctx.set(pe.w.cycles, 3)
        ctx.set(pe.a, 5)
        ctx.set(pe.valid, 1)
        ctx.set(pe.first, 1)
        ctx.set(pe.advance, 0)
        await ctx.tick()
        log.append((ctx.get(pe.acc), ctx.get(pe.a_out), ctx.get(pe.valid_out)))
        ctx.set(pe.valid, 0)
        for step in range(3):
            ctx.set(pe.step, step)
            log.append(ctx.get(pe.acc))
            await ctx.tick()
        log.append(ctx.get(pe.acc))

    sim = Simulator(pe)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # step 0 of a valid MAC adds a << shift (mag bit 0): 5 on the accumulator's grid (the
    # decoded shift already holds the grid's fraction bits)
    assert log[0] == (5, 0, 0), "no advance: nothing forwarded"
    assert log[1:4] == [5, 5, 5], "no valid: the accumulator holds at every step"
    assert log[4] == 5, "no valid: the accumulator holds"


def test_array_pe_is_the_lockstep_pe():
    pe = ArrayConfig(rows=2, cols=2, pe="bitserial").build_pe()
    assert isinstance(pe, LockstepBitSerialPE)
    assert "b" not in pe.signature.members and "sel" not in pe.signature.members


def test_init_wrong_spec():
    with pytest.raises(TypeError, match=r"^spec must be a BitSerialSpec, not 'int4'$"):
        BitSerialDecoder("int4")
    with pytest.raises(TypeError, match=r"^spec must be a BitSerialSpec, not "):
        LockstepBitSerialPE(pe_spec("int4"))
    with pytest.raises(ValueError, match=r"^LockstepBitSerialPE needs a BitSerialSpec made "
                                         r"with lockstep=True, not lockstep=False$"):
        LockstepBitSerialPE(pe_spec("bitserial"))
    with pytest.raises(ValueError, match=r"^BitSerialPE is the stand-alone \(handshake\) PE; "
                                         r"an array's lockstep PE is LockstepBitSerialPE"):
        BitSerialPE(lockstep=True)
    assert isinstance(make_pe("bitserial"), BitSerialPE)
