import pytest

from nybble.explore import DesignPoint, load_workload
from nybble.explore.bench import dask_speedup
from nybble.sw.errors import ParameterError


def test_worker_counts_are_checked():
    with pytest.raises(ParameterError, match=r"worker counts must be positive integers, "
                                             r"not \(0,\)"):
        dask_speedup([DesignPoint("int4", 1, 1)], load_workload("resnet50"), worker_counts=(0,))


@pytest.mark.slow
@pytest.mark.synth
def test_cold_runs_on_one_and_two_workers(tiny_topology, cache_root):
    points = [DesignPoint("int4", 1, 1), DesignPoint("int4", 1, 1, "ws")]
    res = dask_speedup(points, load_workload(tiny_topology), worker_counts=(1, 2),
                       progress=False)
    assert [r["workers"] for r in res["runs"]] == [1, 2] and res["tables_equal"]
    assert res["speedup"]["1"] == 1.0 and res["speedup"]["2"] > 0
