"""One BLAS thread for the small and medium dense algebra of the potential (CPU only).

On a busy machine a threaded OpenBLAS GEMM or eigensolver waits for its slowest thread: the
(129 × r)(r × r²) products of a long-range map and the 225 × 225 eigenproblems of the Tucker
compression were measured to take 0.2–2 s instead of 10–40 ms when other processes (or the
Numba threads of this package) held the cores. These steps are run with one BLAS thread;
the large GEMMs of evaluating the Tucker form at many points keep all threads.
"""

from __future__ import annotations

import contextlib

from pipeline.backend import backend_name


def single_blas_thread(xp):
    """Context manager: BLAS limited to one thread for NumPy (``threadpoolctl``), no-op otherwise."""
    if backend_name(xp) != "numpy":
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a minimal environment (a GPU check machine): BLAS keeps its threads
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
