"""Nybble: a hardware-software co-design simulator for 4-bit multiply-accumulate arrays."""
__version__ = "0.1.0"
