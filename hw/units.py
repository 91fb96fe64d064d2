"""Which product unit computes a format pair: the factory over the unit families.

:func:`unit_class` picks the unit (table in :mod:`.product`), :func:`product_grid` says
what it computes -- grid and range of ``p`` -- without building a component (the pure PE
spec of :mod:`.spec` reads it), and :func:`make_product_unit` builds it.
"""

from .lmul import LMulUnit
from .lut import LutUnit
from .product import MultiplierUnit, check_format
from .shift import BarrelShiftUnit, ShiftUnit
from nybble.sw.errors import ParameterError

__all__ = ["PRODUCTS", "unit_class", "product_grid", "make_product_unit"]

#: Product kinds a PE can ask for.
PRODUCTS = ("exact", "lmul")


def unit_class(fmt_a, fmt_b, product="exact"):
    """The :class:`~.product.ProductUnit` subclass for ``fmt_a`` x ``fmt_b`` (Format
    records); ``ValueError`` for a pair no unit implements."""
    if product not in PRODUCTS:
        raise ParameterError(f"product must be one of 'exact', 'lmul', not {product!r}")
    if product == "lmul":
        return LMulUnit
    kinds = (fmt_a.kind, fmt_b.kind)
    if fmt_b.kind == "codebook":
        return LutUnit
    if kinds == ("pow2", "pow2"):
        return ShiftUnit
    if "pow2" in kinds and set(kinds) <= {"pow2", "int", "float"}:
        return BarrelShiftUnit
    if set(kinds) <= {"int", "float"}:
        return MultiplierUnit
    raise ParameterError(f"no product unit for {fmt_a.name} (kind {fmt_a.kind!r}) x {fmt_b.name} "
                     f"(kind {fmt_b.kind!r}); the weight (fmt_b) may be a codebook, the "
                     "activation (fmt_a) must be an int, float or pow2 format")


def product_grid(fmt_a, fmt_b, *, product="exact", lut_bits=16, lut_frac_bits=None):
    """``(frac_bits, p_min, p_max)`` of the unit :func:`make_product_unit` would build:
    ``p`` is an integer in ``p_min .. p_max`` on the grid ``2**-frac_bits``."""
    fa, fb = check_format("fmt_a", fmt_a), check_format("fmt_b", fmt_b)
    cls = unit_class(fa, fb, product)
    if cls is LutUnit:
        return cls.grid(fa, fb, lut_bits=lut_bits, lut_frac_bits=lut_frac_bits)
    return cls.grid(fa, fb)


def make_product_unit(fmt_a, fmt_b, *, product="exact", lut_bits=16, lut_frac_bits=None,
                      table_port=False):
    """The product unit for ``fmt_a`` x ``fmt_b`` (``a`` is the activation, ``b`` the weight).

    Parameters
    ----------
    product : ``"exact"`` (default) or ``"lmul"`` (the L-Mul approximate product of two floats
        of one format, :class:`~.lmul.LMulUnit`).
    lut_bits, lut_frac_bits, table_port : options of :class:`~.lut.LutUnit`, used when
        ``fmt_b`` is a codebook.

    Raises ``TypeError`` for a format that is not a name or Format, ``ValueError`` for a pair
    no unit implements.
    """
    fa, fb = check_format("fmt_a", fmt_a), check_format("fmt_b", fmt_b)
    cls = unit_class(fa, fb, product)
    if cls is LutUnit:
        return cls(fa, fb, lut_bits=lut_bits, lut_frac_bits=lut_frac_bits,
                   table_port=table_port)
    return cls(fa, fb)
