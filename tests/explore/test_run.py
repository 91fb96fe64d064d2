import concurrent.futures
import time

import distributed
import pytest

from nybble.explore import ExploreTable, cross_product, explore, load_workload
from nybble.explore.metrics import METRICS, area, energy
from nybble.explore.run import dask_executor, local_executor, sources_digest
from nybble.sw.errors import ParameterError, ParameterTypeError

# no synthesis and no energy runs (tests/explore/test_energy.py runs those)
NO_AREA = tuple(m for m in METRICS if m not in (area, energy))


def _points():
    points, skipped = cross_product(["int4", "int8", "mxfp4"], ["2x2", "4x4"], ["os", "ws"],
                                    [None, 8.0], [100.0])
    return points, skipped


def _interrupted():
    time.sleep(0.5)   # finishes well after the tasks before it
    raise KeyboardInterrupt


class _InterruptAt(concurrent.futures.ThreadPoolExecutor):
    """A one-thread pool whose ``at``-th task is 'interrupted' (Ctrl-C while it runs)."""

    def __init__(self, at):
        super().__init__(max_workers=1)
        self.at, self.n = at, 0

    def submit(self, fn, *args):
        self.n += 1
        return super().submit(_interrupted) if self.n == self.at else \
            super().submit(fn, *args)


def test_local_pool_table_cache_and_resume(tiny_topology, cache_root):
    points, skipped = _points()
    w = load_workload(tiny_topology)
    table = explore(points, w, workers=2, metrics=NO_AREA, progress=False, skipped=skipped)
    assert isinstance(table, ExploreTable)
    assert [r["label"] for r in table.rows] == [p.label for p in points]
    assert table.stats == {"points": len(points), "cached": 0, "computed": len(points)}
    assert table.skipped == skipped and len(skipped) == 4
    assert "stall_cycles" in table.missing and "inferences_per_j" in table.missing
    again = explore(points, w, workers=2, metrics=NO_AREA, progress=False)
    assert again.rows == table.rows and again.stats["cached"] == len(points)
    # an interrupted sweep keeps what finished: the accuracies are cached already, so the
    # tasks are the 10 array groups of 2 points; the last is interrupted, the 9 before it stay
    more, _ = cross_product(["int4", "int8", "mxfp4"], ["2x2", "4x4"], ["os", "ws"],
                            [None, 8.0], [200.0])
    with pytest.raises(KeyboardInterrupt):
        explore(more, w, executor=_InterruptAt(10), metrics=NO_AREA, progress=False)
    resumed = explore(more, w, executor=concurrent.futures.ThreadPoolExecutor(1),
                      metrics=NO_AREA, progress=False)
    assert resumed.stats["cached"] == 9 * 2 and resumed.stats["computed"] == 2
    fresh = explore(more, w, workers=1, metrics=NO_AREA, progress=False, use_cache=False)
    assert fresh.rows == resumed.rows


def test_dask_local_cluster_equals_the_local_pool(tiny_topology, cache_root):
    points, _ = _points()
    w = load_workload(tiny_topology)
    local = explore(points, w, workers=2, metrics=NO_AREA, progress=False, use_cache=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        client = dask_executor(cluster.scheduler_address)
        try:
            assert len(client.scheduler_info()["workers"]) == 2
            remote = explore(points, w, executor=client, metrics=NO_AREA, progress=False,
                             use_cache=False)
        finally:
            client.close()
    assert remote.rows == local.rows


def test_errors():
    w = load_workload("resnet50")
    with pytest.raises(ParameterError, match="points must list at least one design point"):
        explore([], w)
    with pytest.raises(ParameterTypeError, match="points must be DesignPoint objects"):
        explore(["int4 4x4"], w)
    with pytest.raises(ParameterError, match="workers must be a positive integer, not 0"):
        local_executor(0)
    with pytest.raises(ParameterError, match=r"scheduler address must look like "
                                             r"tcp://HOST:8786, not 'localhost'"):
        dask_executor("localhost")
    with pytest.raises(ParameterError, match=r"cannot reach the Dask scheduler at "
                                             r"'tcp://127\.0\.0\.1:1'"):
        dask_executor("tcp://127.0.0.1:1", timeout=1)


def test_sources_digest_is_stable():
    assert sources_digest() == sources_digest() and len(sources_digest()) == 64
