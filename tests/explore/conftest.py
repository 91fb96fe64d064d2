"""What the explorer tests share: a tiny topology workload and a private cache root."""
import pytest


@pytest.fixture
def tiny_topology(tmp_path):
    """Two small GEMMs as a SCALE-Sim topology file."""
    path = tmp_path / "tiny.csv"
    path.write_text("Layer, M, N, K,\nfc1, 8, 32, 64,\nfc2, 8, 16, 32,\n")
    return str(path)


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    """``$NYBBLE_CACHE`` pointing at a fresh directory for the test."""
    root = tmp_path / "cache"
    monkeypatch.setenv("NYBBLE_CACHE", str(root))
    return root
