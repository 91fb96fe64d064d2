"""The cycle model's helpers (:mod:`nybble.sim.cycles`)."""
from nybble.hw.config import ArrayConfig
from nybble.sim.cycles import block_cycle_overhead


def test_block_cycle_overhead():
    cfg = ArrayConfig(rows=4, cols=4, pe="mxfp4")
    block, plain, ratio = block_cycle_overhead(cfg, 16, 16, 64)
    assert block == plain + 1 and ratio == block / plain       # one more pipeline stage
    block, plain, _ = block_cycle_overhead(cfg, 8, 8, 40)       # K padded to 64
    assert block - plain == 4 * (max(8, 7) - max(5, 7)) + 1    # 4 tiles, period 8 vs 7
