"""What every PE component shares: the operand / control signature and the base class.

A PE is built from its pure spec (:mod:`.spec`): the component holds the spec and answers
every parameter question from it (``pe.lanes`` is ``pe.spec.lanes``), so a PE and the
software that drives it can never disagree about widths, grids or latency.
"""

from amaranth.hdl import signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .units import make_product_unit

__all__ = ["PESignature", "PEBase", "adder_tree"]


class PESignature(wiring.Signature):
    """The operand / control interface every PE shares (:mod:`.pe`), plus ``extra``."""

    def __init__(self, a_bits, b_bits, acc_bits, extra=None):
        members = {
            "a": In(unsigned(a_bits)), "b": In(unsigned(b_bits)),
            "valid": In(1), "first": In(1),
            "a_out": Out(unsigned(a_bits)), "b_out": Out(unsigned(b_bits)),
            "valid_out": Out(1), "first_out": Out(1),
            "acc": Out(signed(acc_bits)), "overflow": Out(1),
        }
        members.update(extra or {})
        super().__init__(members)


def adder_tree(terms):
    """The exact sum of ``terms`` (Values) as a pairwise tree, every level one bit wider."""
    terms = list(terms)
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


class PEBase(wiring.Component):
    """A PE component built from ``spec`` with the signature ``PESignature(spec) + extra``.

    Attribute lookups that the component does not answer itself go to the spec
    (``lanes``, ``latency``, ``acc_bits``, ``frac_bits``, ``golden_kwargs()``, ``model()``, ...).
    """

    def __init__(self, spec, extra=None):
        self._spec = spec
        super().__init__(PESignature(spec.a_bits, spec.b_bits, spec.acc_bits, extra))

    spec = property(lambda self: self._spec)

    def __getattr__(self, name):
        spec = self.__dict__.get("_spec")
        if name.startswith("_") or spec is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(spec, name)

    def _lane_units(self, m, **unit_options):
        """One product unit per lane (submodules ``product_<i>``), on lane ``i`` of ``a`` and
        ``b`` (bits ``[i * w, (i + 1) * w)``)."""
        spec = self._spec
        wa, wb = spec.fmt_a.bits, spec.fmt_b.bits
        units = []
        for i in range(spec.lanes):
            unit = make_product_unit(spec.fmt_a, spec.fmt_b, **unit_options)
            m.submodules[f"product_{i}"] = unit
            m.d.comb += [unit.a.eq(self.a[i * wa:(i + 1) * wa]),
                         unit.b.eq(self.b[i * wb:(i + 1) * wb])]
            units.append(unit)
        return units

    def _forward(self, m, names):
        """Systolic forwarding: ``<name>_out`` is ``<name>`` one clock edge later."""
        for n in names:
            m.d.sync += getattr(self, f"{n}_out").eq(getattr(self, n))
