"""``nybble.explore``: the co-design explorer -- design points x workload -> one table of area,
cycles, time, accuracy and figures of merit, with Pareto fronts and reports.

    from nybble.explore import cross_product, load_workload, explore
    points, skipped = cross_product(["int4", "int8"], ["4x4", "8x8"], ["os", "ws"])
    table = explore(points, load_workload("llama-7b"))      # local process pool

Modules: :mod:`.points` (design points), :mod:`.workload` (GEMM lists, LLaMA decode),
:mod:`.accuracy` (format error on the workload), :mod:`.metrics` (one function per column),
:mod:`.run` (executors, cache, the table), :mod:`.pareto` (fronts, constraints),
:mod:`.report` (PNG, HTML, CSV, JSON), :mod:`.weights` (user weights).
"""

from .points import DesignPoint, cross_product, read_points
from .workload import Workload, load_workload
from .run import ExploreTable, explore, local_executor, dask_executor

__all__ = ["DesignPoint", "cross_product", "read_points", "Workload", "load_workload",
           "ExploreTable", "explore", "local_executor", "dask_executor"]
