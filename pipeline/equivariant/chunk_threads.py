"""Run the chunks of a batched tensor product on several threads, BLAS on one thread per chunk.

A chunk of a product is small GEMMs and element-wise steps that hold no GIL (one compiled
call per chunk for the Gaunt-type products, :mod:`pipeline.equivariant.chunk_kernels`;
NumPy calls for ``cg``), so chunks run in parallel in a thread pool. Inside the pool every
loaded BLAS library (NumPy's, and the one SciPy ships that compiled code calls) is limited to
one thread: a multi-threaded BLAS on the small GEMMs
of one chunk spends more time synchronising than computing, and several chunks each asking
for every core oversubscribe the machine (measured: a second BLAS thread made ``gaunt_grid``
at L = 6 slower, not faster).

The number of threads defaults to the number the BLAS library is allowed to use at the time
of the call (``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` or a
``threadpoolctl.threadpool_limits`` around the call), so one setting governs all of NumPy's
parallelism. The worker pool and the threadpoolctl controller are made once per process
(0.3 and 0.4 ms a call otherwise, 7 % of a 10 ms product). The chunks are of equal size, as many as
a multiple of the thread count (:func:`chunk_starts`); each thread, the calling one included,
has its own :class:`~pipeline.equivariant.ring_transform.Workspace` (on NumPy the one its
previous call left, see :func:`thread_workspace`) and takes the next chunk
not yet taken until none is left, so a thread slowed by other load on the machine does fewer
chunks instead of holding up the call; chunks write disjoint rows of the
output, so the result does not depend on the number of threads as long as each row's
arithmetic does not depend on the chunk it falls in (true of the tensor products, whose GEMMs
have the batch as their column dimension; a body that works in sub-batches of rows passes
``align`` so the sub-batches do not move with the thread count).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from pipeline.backend import backend_name
from pipeline.equivariant.ring_transform import Workspace

ChunkBody = Callable[[slice, Workspace], None]

#: Largest workspace (bytes) a thread keeps for its next call; a larger one (a CG chunk of
#: 2²³ float64 values) is freed at the end of its call.
KEPT_WORKSPACE_BYTES = 32 * 2**20
_kept = threading.local()


@contextlib.contextmanager
def thread_workspace(xp: Any, dtype: Any) -> Iterator[Workspace]:
    """The calling thread's workspace for one call of :func:`run_chunks`.

    On NumPy the buffers of the thread's previous call of the same dtype are reused: a call on
    fresh buffers faults them in every time (gaunt_grid at L = 6 on 400 items: 472 page faults
    and 1.05 ms a call, 96 µs at 100 items where the buffers stay on glibc's heap). A nested
    call finds the workspace taken and gets a new one; device arrays always get a new one.
    """
    if backend_name(xp) != "numpy":
        yield Workspace(xp, dtype)
        return
    kept = getattr(_kept, "workspaces", None)
    if kept is None:
        kept = _kept.workspaces = {}
    key = np.dtype(dtype).str
    ws = kept.pop(key, None) or Workspace(xp, dtype)
    try:
        yield ws
    finally:
        if ws.nbytes <= KEPT_WORKSPACE_BYTES:
            kept[key] = ws


def blas_threads(controller) -> int:
    """Threads the loaded BLAS libraries may use now (1 when none is found)."""
    counts = [lib.num_threads for lib in controller.select(user_api="blas").lib_controllers]
    return max(counts, default=1)


def worker_threads(threads: int | None, xp: Any) -> int:
    """Threads :func:`run_chunks` would use for ``threads`` (None: the BLAS thread limit) on ``xp``.

    1 for device arrays and without threadpoolctl, where the chunks run serially.
    """
    if backend_name(xp) != "numpy":
        return 1
    if threads is not None:
        return max(1, int(threads))
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return 1
    return blas_threads(_controller(ThreadpoolController))


def chunk_starts(n_total: int, step: int, threads: int, align: int = 1) -> list[int]:
    """First rows of the chunks: at most ``step`` rows each, equal sizes up to one row, and a
    multiple of ``threads`` chunks when the batch allows it (so the threads get equal work).

    With ``align`` > 1 every chunk but the last has a multiple of ``align`` rows (``step``
    should be one too), so a body that works in sub-batches of ``align`` rows sees the same
    sub-batches whatever the thread count.
    """
    if n_total <= 0:
        return []
    threads = max(1, int(threads))
    n_chunks = math.ceil(math.ceil(n_total / max(1, int(step))) / threads) * threads
    size = math.ceil(n_total / n_chunks)
    return list(range(0, n_total, math.ceil(size / align) * align))


def run_chunks(n_total: int, step: int, body: ChunkBody, *, xp: Any, dtype: Any, threads: int | None = None,
               align: int = 1) -> None:
    """Call ``body(rows, workspace)`` for consecutive row slices of a batch of ``n_total``.

    Parameters
    ----------
    n_total : int
        Batch size (rows).
    step : int
        Largest chunk (rows), chosen by the caller for cache use.
    body : callable
        ``body(slice, workspace)`` computes the rows ``slice``; bodies of different chunks must
        write disjoint memory.
    xp : module
        Array namespace; only NumPy runs chunks on threads (device arrays run serially).
    dtype : numpy dtype
        Dtype of the workspaces.
    threads : int, optional
        Worker threads (default: the BLAS thread limit in effect, see the module docstring).
        Without threadpoolctl (a minimal environment) the chunks run serially.
    align : int
        Chunk sizes are multiples of it (:func:`chunk_starts`).
    """
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # a minimal environment (a GPU check machine): serial, BLAS keeps its threads
        ThreadpoolController = None
    if backend_name(xp) != "numpy" or n_total <= step or ThreadpoolController is None:
        with thread_workspace(xp, dtype) as ws:
            for lo in range(0, n_total, step):
                body(slice(lo, min(lo + step, n_total)), ws)
        return
    controller = _controller(ThreadpoolController)
    n_threads = worker_threads(threads, xp)
    starts = chunk_starts(n_total, step, n_threads, align)
    stops = starts[1:] + [n_total]
    n_workers = min(n_threads, len(starts))
    if n_workers <= 1:
        with thread_workspace(xp, dtype) as ws, controller.limit(limits=1, user_api="blas"):
            for lo, hi in zip(starts, stops):
                body(slice(lo, hi), ws)
        return
    chunks = list(zip(starts, stops))
    taken, lock = itertools.count(), threading.Lock()

    def next_chunk() -> int:
        with lock:  # each chunk goes to exactly one thread (also without a GIL)
            return next(taken)

    def work() -> None:
        with thread_workspace(xp, dtype) as ws:
            while (i := next_chunk()) < len(chunks):
                lo, hi = chunks[i]
                body(slice(lo, hi), ws)

    with controller.limit(limits=1, user_api="blas"):
        futures = [_pool(n_workers - 1).submit(work) for _ in range(n_workers - 1)]
        try:
            work()  # the calling thread works too instead of waiting idle
        finally:
            wait(futures)
        for future in futures:
            future.result()


@functools.cache
def _controller(factory):
    """One threadpoolctl controller per process (building one scans the loaded libraries: 0.4 ms a call)."""
    return factory()


@functools.cache
def _pool(n_workers: int) -> ThreadPoolExecutor:
    """One pool of ``n_workers`` helper threads (the calling thread is the other worker) per
    thread count, kept for the process (starting one costs 0.3 ms a call)."""
    return ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="tensor-product")
