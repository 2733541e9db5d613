"""Blocks of curves fitted in worker processes, for tables of thousands of models.

Why: the fitting engine works on blocks of curves (bounded memory), and each block is
independent, so on a machine with several cores the blocks of a large table can run at
the same time. Results are put back in block order, and a block's numbers do not depend on
where it ran, so a parallel fit equals the serial one bit for bit.

Only tables of at least :data:`PARALLEL_MIN_CURVES` curves use workers (starting a worker
costs about a second, far more than fitting a small table). The number of workers is the
environment variable ``LENSLLM_WORKERS`` (an integer >= 1; ``1`` turns workers off), by
default the CPUs this process may use, at most :data:`MAX_WORKERS`. Workers are forked
(``spawn`` would rerun a user's script that lacks an ``if __name__ == "__main__"`` guard),
once per process, and reused. Forking a process that holds threads can deadlock, so a
process that has imported torch (its thread pools), or a platform without ``fork``, fits
serially.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lensllm.exceptions import InputError

__all__ = ["MAX_WORKERS", "PARALLEL_MIN_CURVES", "map_blocks", "worker_count"]

#: The fewest curves for which blocks go to worker processes.
PARALLEL_MIN_CURVES = 2048
#: The most worker processes started by default.
MAX_WORKERS = 8

_POOL: Any = None
_POOL_SIZE = 0


def worker_count() -> int:
    """Workers to use: ``LENSLLM_WORKERS`` if set, else the usable CPUs (capped).

    Raises:
        InputError: ``LENSLLM_WORKERS`` is not an integer >= 1.
    """
    raw = os.environ.get("LENSLLM_WORKERS")
    if raw is not None and raw.strip():
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise InputError(f"environment variable LENSLLM_WORKERS must be an integer >= 1, "
                             f"got {raw!r}")
        return value
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def _may_fork(n_curves: int) -> bool:
    import multiprocessing as mp

    return (n_curves >= PARALLEL_MIN_CURVES and "torch" not in sys.modules
            and "fork" in mp.get_all_start_methods())


def _pool(workers: int) -> Any:
    """The process pool of this process (created on first use, grown if asked for more)."""
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE < workers:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        if _POOL is not None:
            _POOL.shutdown(wait=True)
        _POOL = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"))
        _POOL_SIZE = workers
    return _POOL


def map_blocks(func: Callable[..., Any], jobs: Sequence[tuple[tuple, dict]],
               n_curves: int) -> list[Any]:
    """``[func(*args, **kwargs) for args, kwargs in jobs]``, in order; run by worker
    processes when ``n_curves`` reaches :data:`PARALLEL_MIN_CURVES` and there are at least
    two jobs and two workers. ``func`` must be a module-level function (it is pickled)."""
    workers = min(worker_count(), len(jobs)) if _may_fork(n_curves) else 1
    if workers <= 1:
        return [func(*args, **kwargs) for args, kwargs in jobs]
    pool = _pool(workers)
    futures = [pool.submit(func, *args, **kwargs) for args, kwargs in jobs]
    return [f.result() for f in futures]
