"""Codebook (LUT) product unit: the weight is an index into a table loaded at run time.

::

                      we, waddr, wdata (write port, 1 entry per cycle)
                                   |
                                   v
                 +-----------------------------------+
    b (index) -->|  LutTable: 2**bits x signed(lut_bits) registers  |--> table[b]
                 +-----------------------------------+        |
                                                              v
    a (int code) ------------------------------------------> a * table[b] --> p

The table holds fixed-point values on the grid ``2**-lut_frac_bits`` (default
:data:`nybble.sw.CODEBOOK_FRAC_BITS` = 14, the grid on which the golden model stores every
non-dyadic codebook, e.g. NF4), as ``lut_bits``-bit two's-complement integers (default 16:
values in ``[-2, 2)``, enough for NF4's ``[-1, 1]``).  After reset it holds the codebook of
``fmt_b`` (:func:`nybble.sw.element_ints`), so NF4 needs no load; any other 16-entry codebook
is written through the write port (``we``: on the next clock edge ``table[waddr] <= wdata``).

``p = a * table[b]`` is exact, on the grid ``2**-(frac_bits(fmt_a) + lut_frac_bits)``, and wide
enough for any table contents (``a_bits + lut_bits`` bits).  The product path is
combinational (``latency`` 0); a table write takes effect from the next cycle.

With ``table_port=True`` the unit has no registers: the table comes in on ``table`` (an array
of ``2**bits`` signed entries) so that the lanes of a dot-product PE share one
:class:`LutTable`.
"""

from amaranth.hdl import Array, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from nybble.sw.formats import check_integral
from nybble.sw.golden import CODEBOOK_FRAC_BITS, element_ints
from .product import ProductUnit, decode, check_format, signed_width
from nybble.sw.errors import ParameterError, ParameterTypeError

__all__ = ["LutTable", "LutUnit", "lut_options", "table_init"]


def lut_options(lut_bits=16, lut_frac_bits=None):
    """Checked ``(lut_bits, lut_frac_bits)``; ``lut_frac_bits`` None is
    :data:`nybble.sw.CODEBOOK_FRAC_BITS`."""
    return (check_integral("lut_bits", lut_bits, 2, 64),
            check_integral("lut_frac_bits", CODEBOOK_FRAC_BITS if lut_frac_bits is None
                           else lut_frac_bits, 0, 64))


def table_init(fmt_b, lut_bits, lut_frac_bits):
    """The reset contents of the table: ``fmt_b``'s codebook as integers on the grid
    ``2**-lut_frac_bits`` (``ValueError`` when an entry needs more than ``lut_bits``)."""
    ints, _ = fmt_b.fixed_values(lut_frac_bits)
    lo, hi = -(1 << (lut_bits - 1)), (1 << (lut_bits - 1)) - 1
    vals = [int(v) for v in ints]
    if min(vals) < lo or max(vals) > hi:
        need = signed_width(min(vals), max(vals))
        raise ParameterError(f"LUT entry width must be at least {need} bits to hold the "
                         f"{fmt_b.name} codebook on the grid 2**-{lut_frac_bits}, not {lut_bits}")
    return vals


class LutTable(wiring.Component):
    """``n`` registers of ``signed(lut_bits)`` with one write port.

    Ports: ``we``, ``waddr`` (``addr_bits``), ``wdata`` in; ``table`` (array of ``n``) out.
    ``init``: the reset contents.
    """

    def __init__(self, addr_bits, lut_bits, init):
        self._init = [int(v) for v in init]
        n = 1 << addr_bits
        if len(self._init) != n:
            raise ParameterError(f"init must have {n} entries, not {len(self._init)}")
        super().__init__({
            "we": In(1), "waddr": In(unsigned(addr_bits)), "wdata": In(signed(lut_bits)),
            "table": Out(signed(lut_bits)).array(n),
        })

    def elaborate(self, platform):
        m = Module()
        for i, v in enumerate(self._init):
            reg = Signal(self.wdata.shape(), init=v, name=f"entry_{i}")
            with m.If(self.we & (self.waddr == i)):
                m.d.sync += reg.eq(self.wdata)
            m.d.comb += self.table[i].eq(reg)
        return m


class LutUnit(ProductUnit):
    """Exact product of an integer activation and a codebook weight (a table index).

    Parameters
    ----------
    fmt_a : integer format of the activation (e.g. ``"int8"``).
    fmt_b : the nominal codebook (e.g. ``"nf4"`` or ``nybble.sw.codebook(...)``): its width
        sets the index width and its values the reset contents of the table.
    lut_bits : width of a table entry (default 16).
    lut_frac_bits : fraction bits of a table entry (default ``CODEBOOK_FRAC_BITS`` = 14).
    table_port : take the table on an input port instead of holding it (see module doc).
    """

    @classmethod
    def grid(cls, fmt_a, fmt_b, *, lut_bits=16, lut_frac_bits=None):
        """``(frac_bits, p_min, p_max)`` of the unit (pure): ``p`` covers any table
        contents of ``lut_bits``-bit entries."""
        lut_bits, lut_frac_bits = lut_options(lut_bits, lut_frac_bits)
        if fmt_a.kind != "int":
            raise ParameterError(f"LutUnit takes an integer activation, not {fmt_a.name} "
                             f"(kind {fmt_a.kind!r})")
        if fmt_b.kind != "codebook":
            raise ParameterError(f"LutUnit takes a codebook weight, not {fmt_b.name} "
                             f"(kind {fmt_b.kind!r})")
        fa = element_ints(fmt_a)[1]
        ia = [int(v) for v in element_ints(fmt_a)[0][fmt_a.finite]]
        t_lo, t_hi = -(1 << (lut_bits - 1)), (1 << (lut_bits - 1)) - 1
        cands = [x * y for x in (min(ia), max(ia)) for y in (t_lo, t_hi)]
        return fa + lut_frac_bits, min(cands), max(cands)

    def __init__(self, fmt_a, fmt_b, *, lut_bits=16, lut_frac_bits=None, table_port=False):
        fmt_b = check_format("fmt_b", fmt_b)
        self._lut_bits, self._lut_frac_bits = lut_options(lut_bits, lut_frac_bits)
        if not isinstance(table_port, bool):
            raise ParameterTypeError(f"table_port must be a bool, not {table_port!r}")
        self._table_port = table_port
        if table_port:
            extra = {"table": In(signed(self._lut_bits)).array(fmt_b.n_codes)}
        else:
            extra = {"we": In(1), "waddr": In(unsigned(fmt_b.bits)),
                     "wdata": In(signed(self._lut_bits))}
        super().__init__(fmt_a, fmt_b, extra=extra, lut_bits=lut_bits,
                         lut_frac_bits=lut_frac_bits)   # checks the format pair
        self._init = table_init(self._fmt_b, self._lut_bits, self._lut_frac_bits)

    lut_bits = property(lambda self: self._lut_bits)
    lut_frac_bits = property(lambda self: self._lut_frac_bits)
    table_init = property(lambda self: list(self._init))

    def elaborate(self, platform):
        m = Module()
        if self._table_port:
            entries = list(self.table)
        else:
            m.submodules.table = table = LutTable(self._fmt_b.bits, self._lut_bits, self._init)
            m.d.comb += [table.we.eq(self.we), table.waddr.eq(self.waddr),
                         table.wdata.eq(self.wdata)]
            entries = list(table.table)
        w = Array(entries)[self.b]
        m.d.comb += self.p.eq(decode(self._fmt_a, self.a).mag * w)
        return m
