"""Cold sweeps on 1 and 2 Dask workers, side by side: the speed-up of ``--scheduler``.

:func:`dask_speedup` runs the same design points through :func:`nybble.explore.explore` on a
:class:`distributed.LocalCluster` of each worker count in turn (one thread per worker process),
every run cold: a fresh cache root (``$NYBBLE_CACHE``, set before the cluster starts so the
worker processes inherit it) and a fresh Verilog build directory, so every run elaborates and
synthesises every array.  It reports each wall time, the speed-up against the first count and
whether the tables are equal.
"""

import os
import tempfile
import time

import distributed

from nybble.sw.errors import ParameterError
from .run import explore

__all__ = ["dask_speedup"]


def dask_speedup(points, workload, *, worker_counts=(1, 2), liberty=None, progress=True):
    """``{"runs": [{"workers", "seconds"}], "speedup": {count: t_first / t_count},
    "tables_equal": bool, "points": n}`` (module docstring)."""
    counts = [int(c) for c in worker_counts]
    if not counts or min(counts) < 1:
        raise ParameterError(f"worker counts must be positive integers, not {worker_counts!r}")
    saved = os.environ.get("NYBBLE_CACHE")
    runs, tables = [], []
    try:
        for n in counts:
            with tempfile.TemporaryDirectory(prefix="nybble-bench-explore-") as tmp:
                os.environ["NYBBLE_CACHE"] = os.path.join(tmp, "cache")
                with distributed.LocalCluster(n_workers=n, threads_per_worker=1,
                                              processes=True, dashboard_address=None) as cl:
                    with distributed.Client(cl.scheduler_address) as client:
                        client.wait_for_workers(n)
                        start = time.perf_counter()   # the sweep, not the cluster start
                        table = explore(points, workload, executor=client, liberty=liberty,
                                        build_dir=os.path.join(tmp, "build"),
                                        progress=progress)
                        seconds = time.perf_counter() - start
            runs.append({"workers": n, "seconds": seconds})
            tables.append(table.rows)
    finally:
        if saved is None:
            os.environ.pop("NYBBLE_CACHE", None)
        else:
            os.environ["NYBBLE_CACHE"] = saved
    first = runs[0]["seconds"]
    return {"points": len(points), "runs": runs,
            "speedup": {str(r["workers"]): first / r["seconds"] for r in runs},
            "tables_equal": all(t == tables[0] for t in tables)}
