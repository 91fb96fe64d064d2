"""The errors Nybble reports to its users, one family for the whole library.

Every error that a caller's input causes (an unknown format, an accumulator too narrow for K,
a shape mismatch, a malformed file) is a :class:`NybbleError` that names the parameter and the
allowed values; a tool that fails (a Verilator build, a Yosys run) raises :class:`ToolError`.
They subclass the built-in exception a caller would expect (``ValueError``, ``TypeError``,
``RuntimeError``), so ``except ValueError`` keeps working.  The command line prints a
``NybbleError`` as one line; anything else is a bug and keeps its traceback.
"""

__all__ = ["NybbleError", "ParameterError", "ParameterTypeError", "InputFileError",
           "ToolError"]


class NybbleError(Exception):
    """Base class of the errors Nybble reports to its users."""


class ParameterError(NybbleError, ValueError):
    """A parameter has a value outside the allowed ones (the message names both)."""


class ParameterTypeError(NybbleError, TypeError):
    """A parameter has the wrong type (the message names the type wanted)."""


class InputFileError(NybbleError, FileNotFoundError):
    """An input file the caller named does not exist."""


class ToolError(NybbleError, RuntimeError):
    """An external tool (Verilator, Yosys, nextpnr, a simulator) failed or is missing."""
