"""Evaluate design points on an executor and return the table; cached by content, resumable.

:func:`explore` is the library entry point::

    table = explore(points, workload)                        # local process pool
    table = explore(points, workload, executor=dask_client)  # a Dask distributed cluster

Work is split so that nothing runs twice: one task per distinct PE numerics (the accuracy
of the format on the workload, :func:`nybble.explore.accuracy.workload_accuracy`), one per
distinct output-stationary PE kind (its energy per MAC on the workload's operands,
:func:`nybble.explore.energy.pe_workload_energy`) and one per distinct synthesised array (PE
kind x shape x dataflow), which evaluates every point sharing that array (bandwidths,
clocks) with :func:`nybble.explore.metrics.evaluate_points` and starts as soon as its own
accuracy and energy are known (longest arrays first).  An executor is anything with
``submit(fn, *args)``: a :class:`concurrent.futures.Executor` or a
:class:`distributed.Client` (Dask does the scheduling, retries and data movement; its futures
are waited on with :func:`distributed.wait`).

Caching: every row and every accuracy result is stored by the client as JSON under
``<cache root>/explore`` (:func:`nybble.synth.cache.default_cache_dir`), keyed by the point,
the workload, the user weights, the Liberty file and a digest of Nybble's sources; the Yosys
runs behind the area are cached by :mod:`nybble.synth.yosys` on whichever machine ran them.
An interrupted sweep keeps every finished row and resumes from there.  Progress (a tqdm bar)
goes to stderr.
"""

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

import distributed
from tqdm import tqdm

import nybble.analysis
import nybble.hw
import nybble.sim
import nybble.sw
import nybble.synth
from nybble.synth.cache import ResultCache, cache_key, default_cache_dir
from nybble.sw.errors import ParameterError, ParameterTypeError
from .accuracy import numerics_of, weights_digest, workload_accuracy
from .energy import pe_workload_energy
from .metrics import METRICS, Context, energy as energy_metric, evaluate_points, is_missing
from .points import DesignPoint

__all__ = ["ExploreTable", "explore", "local_executor", "dask_executor", "sources_digest",
           "CACHE_SCHEMA"]

CACHE_SCHEMA = "nybble.explore/1"


def sources_digest():
    """SHA-256 of every ``.py`` of the packages a row depends on (sw, hw, synth, sim,
    analysis, explore): rows cached under an older tree are recomputed."""
    digest = hashlib.sha256(CACHE_SCHEMA.encode())
    folders = [Path(package.__file__).parent for package in
               (nybble.sw, nybble.hw, nybble.synth, nybble.sim, nybble.analysis)]
    for folder in folders + [Path(__file__).parent]:
        for path in sorted(folder.glob("*.py")):
            digest.update(folder.name.encode() + b"/" + path.name.encode() + b"\0"
                          + path.read_bytes())
    return digest.hexdigest()


@dataclasses.dataclass
class ExploreTable:
    """The result of :func:`explore`: ``rows`` (one dict per point, in the order of the
    points), the ``workload`` (dict), ``skipped`` points with reasons, ``missing`` (column ->
    what it waits for) and ``stats`` (``points``, ``cached``, ``computed``)."""
    rows: list
    workload: dict
    skipped: list
    missing: dict
    stats: dict

    def as_dict(self):
        return {"workload": self.workload, "rows": self.rows, "skipped": self.skipped,
                "missing": self.missing, "stats": self.stats}


def local_executor(workers=None):
    """A process pool of ``workers`` processes (default: the CPU count)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ParameterError(f"workers must be a positive integer, not {workers!r}")
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers)


def dask_executor(address, timeout=30):
    """A :class:`distributed.Client` connected to the scheduler at ``address``
    (``tcp://HOST:8786``)."""
    if not isinstance(address, str) or "://" not in address:
        raise ParameterError(f"scheduler address must look like tcp://HOST:8786, not "
                             f"{address!r}")
    try:
        return distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise ParameterError(f"cannot reach the Dask scheduler at {address!r} ({e})") from None


def _is_dask(executor):
    return type(executor).__module__.startswith("distributed")


def _first_done(executor, futures):
    """The futures of ``futures`` that are done, after waiting for at least one."""
    if _is_dask(executor):
        return distributed.wait(futures, return_when="FIRST_COMPLETED").done
    return concurrent.futures.wait(futures,
                                   return_when=concurrent.futures.FIRST_COMPLETED).done


def _submit(executor, fn, *args):
    if _is_dask(executor):
        return executor.submit(fn, *args, pure=False)
    return executor.submit(fn, *args)


def _accuracy_task(pe, workload, weights):
    return workload_accuracy(pe, workload, weights)


def _energy_task(pe, workload, weights, build_dir, cache_dir):
    return pe_workload_energy(pe, workload, weights, build_dir=build_dir, cache_dir=cache_dir)


def _group_task(points, ctx):
    return evaluate_points(points, ctx)


def _json_roundtrip(value):
    # rows are compared and cached as JSON: make the fresh ones identical to cached ones
    return json.loads(json.dumps(value))


def explore(points, workload, *, weights=None, executor=None, workers=None, liberty=None,
            cache_dir=None, build_dir="build", progress=True, use_cache=True, skipped=(),
            metrics=None):
    """Evaluate ``points`` (:class:`~nybble.explore.points.DesignPoint` s) on ``workload``
    (:class:`~nybble.explore.workload.Workload`); returns an :class:`ExploreTable`.

    ``weights``: user weights ``{layer name: K x N array}`` (None: synthetic).  ``executor``:
    where tasks run (None: a local process pool of ``workers``).  ``liberty``: Liberty file
    for um^2 (None: transistors only).  ``cache_dir``: Yosys cache (default
    ``$NYBBLE_CACHE/yosys``); the explorer's own cache is ``<cache root>/explore``.
    ``progress``: a tqdm bar on stderr; ``skipped``: points the caller dropped (listed in
    the table as they are); ``metrics``: the metric functions to run (default
    :data:`nybble.explore.metrics.METRICS`; e.g. without ``area`` when no synthesis is
    wanted -- its columns are then absent and the figures of merit say so).

    Paths: with a local pool the cache and build directories are made absolute here, so the
    worker processes use the same ones; Dask workers use the ones given (None: their own
    defaults), since they may run on other machines."""
    points = list(points)
    if not points:
        raise ParameterError("points must list at least one design point")
    for p in points:
        if not isinstance(p, DesignPoint):
            raise ParameterTypeError(f"points must be DesignPoint objects, not {p!r}")
    metrics = tuple(metrics) if metrics is not None else METRICS
    store = ResultCache(default_cache_dir("explore"))
    base = [CACHE_SCHEMA, sources_digest(), workload.digest(), weights_digest(weights),
            str(liberty), ",".join(f"{fn.__module__}.{fn.__qualname__}" for fn in metrics)]
    point_keys = [cache_key(*base, "point", json.dumps(p.as_dict(), sort_keys=True))
                  for p in points]
    rows = [store.get(k) if use_cache else None for k in point_keys]
    todo = [i for i, r in enumerate(rows) if r is None]
    cached = len(points) - len(todo)
    own = executor is None and todo
    if own:
        executor = local_executor(workers)
    bar = tqdm(total=len(points), initial=cached, desc="explore", unit="point",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        if not _is_dask(executor):
            cache_dir = os.path.abspath(cache_dir if cache_dir is not None
                                        else default_cache_dir("yosys"))
            build_dir = os.path.abspath(build_dir)
        cache_dir = None if cache_dir is None else os.fspath(cache_dir)
        groups = {}
        for i in todo:
            p = points[i]
            groups.setdefault((p.pe, p.rows, p.cols, p.dataflow), []).append(i)
        # longest first (bit-serial cycle models, then the larger arrays), so no worker is
        # left with a long task at the end
        order = sorted(groups.values(), key=lambda idx: (not points[idx[0]].bitserial,
                                                         -points[idx[0]].rows
                                                         * points[idx[0]].cols))
        with_energy = energy_metric in metrics
        waiting = [(idx, _needs(points[idx[0]], with_energy)) for idx in order]
        known, futures = {}, {}   # need -> result; future -> ("need", need, key) / ("rows", idx)
        submitted = set()
        try:
            for idx, needs in waiting:
                for need in needs:
                    if need in known or need in submitted:
                        continue
                    ckey = cache_key(*base, *need) if need[0] == "accuracy" else None
                    hit = store.get(ckey) if use_cache and ckey else None
                    if hit is not None:
                        known[need] = hit
                    else:
                        fn, args = _job(need, points[idx[0]].pe, workload, weights, build_dir,
                                        cache_dir)
                        futures[_submit(executor, fn, *args)] = ("need", need, ckey)
                        submitted.add(need)
            while True:
                # a group starts as soon as its own accuracy and PE energy are known
                ready = [(idx, needs) for idx, needs in waiting
                         if all(n in known for n in needs)]
                waiting = [w for w in waiting if w not in ready]
                for idx, needs in ready:
                    ctx = Context(workload, {k: known[(t, k)] for t, k in needs
                                             if t == "accuracy"},
                                  liberty, cache_dir, build_dir, metrics,
                                  {k: known[(t, k)] for t, k in needs if t == "energy"})
                    futures[_submit(executor, _group_task, [points[i] for i in idx],
                                    ctx)] = ("rows", idx)
                if not futures:
                    break
                for future in _first_done(executor, list(futures)):
                    what = futures.pop(future)
                    if what[0] == "need":
                        known[what[1]] = _json_roundtrip(future.result())
                        if what[2]:
                            store.put(what[2], known[what[1]])
                        continue
                    idx = what[1]
                    for i, row in zip(idx, future.result()):
                        rows[i] = _json_roundtrip(row)
                        store.put(point_keys[i], rows[i])
                    bar.update(len(idx))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    finally:
        bar.close()
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
    missing = {}
    for row in rows:
        for key, value in row.items():
            if is_missing(value):
                missing.setdefault(key, value[len("missing:"):].strip())
    return ExploreTable(rows, workload.as_dict(), list(skipped), missing,
                        {"points": len(points), "cached": cached, "computed": len(todo)})


def _needs(point, with_energy):
    """What the rows of ``point``'s array need before they run: ``("accuracy", numerics
    key)`` (none for L-Mul kinds) and, ``with_energy``, ``("energy", PE kind)`` for an
    output-stationary point (the energy runs measure OS PEs only)."""
    numerics = numerics_of(point.pe)
    needs = [] if numerics is None else [("accuracy", numerics.key)]
    if with_energy and point.dataflow == "os":
        needs.append(("energy", point.pe))
    return needs


def _job(need, pe, workload, weights, build_dir, cache_dir):
    """``(fn, args)`` of the task computing ``need``: the accuracy of ``pe``'s numerics
    (cached with the rows) or its energy (cached by content by
    :func:`~nybble.explore.energy.pe_workload_energy`, like the Yosys runs)."""
    if need[0] == "accuracy":
        return _accuracy_task, (pe, workload, weights)
    return _energy_task, (pe, workload, weights, build_dir, cache_dir)
