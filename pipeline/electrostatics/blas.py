"""One BLAS thread for the small and medium dense algebra of the potential (CPU only).

On a busy machine a threaded OpenBLAS GEMM or eigensolver waits for its slowest thread: the
(129 × r)(r × r²) products of a long-range map and the 225 × 225 eigenproblems of the Tucker
compression were measured to take 0.2–2 s instead of 10–40 ms when other processes (or the
Numba threads of this package) held the cores. These steps are run with one BLAS thread;
the large GEMMs of evaluating the Tucker form at many points, and the gathers and
compressions of tensors of :data:`THREADED_ENTRIES` entries or more (at 10⁷ atoms the free-space
gather multiplies a 356³ grid by 392 × 356 matrices and the compression takes the Gram
matrices of a 392³ tensor: seconds per thread), keep all threads.
"""

from __future__ import annotations

import contextlib

from pipeline.backend import backend_name


#: Tensor entries from which the dense algebra keeps every BLAS thread.
THREADED_ENTRIES = 20_000_000


def single_blas_thread(xp, entries: int = 0):
    """Context manager: BLAS limited to one thread for NumPy (``threadpoolctl``), no-op otherwise.

    ``entries``: size of the tensor the algebra works on; from :data:`THREADED_ENTRIES` on,
    also a no-op.
    """
    if backend_name(xp) != "numpy" or entries >= THREADED_ENTRIES:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a minimal environment (a GPU check machine): BLAS keeps its threads
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
