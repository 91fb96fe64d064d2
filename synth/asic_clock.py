"""An ASIC clock estimate from logic depth, so throughput per area is of one technology.

The longest register-to-register path of a synthesised design, in Yosys generic gates
(:attr:`nybble.synth.yosys.AreaReport.logic_depth`, ``ltp -noff``), times a gate delay, plus
the flip-flop's overhead, is the clock period::

    period = (depth * GATE_FO4 + REGISTER_FO4) * FO4(node)
    FO4(node) = FO4_PS_PER_UM * node (um)

``FO4_PS_PER_UM`` = 360 ps per um of drawn gate length: the fan-out-of-4 inverter delay rule
of Ho, Mai and Horowitz, "The future of wires", Proc. IEEE 89(4), 2001 (typical corner);
``GATE_FO4`` = 1.5: a generic 2-input gate (AND / OR / XOR / MUX, one to two CMOS stages)
taken as 1.5 FO4; ``REGISTER_FO4`` = 3: clock-to-Q plus setup.  Both are our assumptions,
not a library's timing; the estimate ranks designs of one flow and compares an array with its
lone PE (generic synthesis builds adders as ripple chains, so absolute figures are slow).
The node is the Liberty's (:func:`nybble.synth.sram.liberty_node`) or
:data:`DEFAULT_NODE_NM` without one.
"""

from nybble.sw.formats import check_integral
from nybble.sw.errors import ParameterError

__all__ = ["FO4_PS_PER_UM", "GATE_FO4", "REGISTER_FO4", "DEFAULT_NODE_NM", "fo4_ps",
           "clock_period_ps", "clock_mhz", "CLOCK_TEXT"]

FO4_PS_PER_UM = 360.0
GATE_FO4 = 1.5
REGISTER_FO4 = 3.0
DEFAULT_NODE_NM = 180

CLOCK_TEXT = (f"asic_mhz: estimate, logic depth (Yosys ltp, generic gates) x {GATE_FO4} FO4 "
              f"+ {REGISTER_FO4} FO4 register overhead, FO4 = {FO4_PS_PER_UM:g} ps/um x node "
              "(Ho, Mai, Horowitz 2001)")


def fo4_ps(node_nm=DEFAULT_NODE_NM):
    """Fan-out-of-4 inverter delay (ps) at ``node_nm`` (drawn gate length, nm)."""
    if isinstance(node_nm, bool) or not isinstance(node_nm, (int, float)) or not (
            5 <= node_nm <= 1000):
        raise ParameterError(f"node_nm must be a process node between 5 and 1000 nm, "
                             f"not {node_nm!r}")
    return FO4_PS_PER_UM * node_nm / 1000


def clock_period_ps(depth, node_nm=DEFAULT_NODE_NM):
    """Clock period (ps) of a design whose longest path is ``depth`` generic gates."""
    depth = check_integral("Logic depth", depth, 0)
    return (depth * GATE_FO4 + REGISTER_FO4) * fo4_ps(node_nm)


def clock_mhz(depth, node_nm=DEFAULT_NODE_NM):
    """Clock frequency estimate (MHz), ``1e6 / clock_period_ps``."""
    return 1e6 / clock_period_ps(depth, node_nm)
