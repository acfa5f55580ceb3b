"""``python -m pipeline tensor-products``: time, error and expressivity of the tensor products."""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.devices import DEVICES

log = logging.getLogger(__name__)

#: Methods of :data:`pipeline.equivariant.products.METHODS`, repeated here so that ``--help``
#: does not import the tensor products (tests/test_cli_startup.py checks that they agree).
METHODS = ("cg", "gaunt_fourier", "gaunt_grid", "vector_gaunt")

DESCRIPTION = """\
Benchmark the equivariant tensor products (structure-independent): for each method and input
degree L (output degree 2L) time the forward product and its adjoint on random inputs of shape
(batch, channels, (L+1)^2), and record FLOP estimates, the max error against the explicit dense
einsum contraction, the expressivity, span dimension and number of reachable paths. Methods:
cg (all paths), gaunt_grid and gaunt_fourier (l1+l2+l3 even), vector_gaunt (odd paths)."""

EPILOG = """\
Example: python -m pipeline tensor-products -o results/tensor_products.nc --lmax 1 2 3 4 --batch 1000 --channels 1 --repeats 5 --device cpu

Defaults are those of the workflow's config schema (tensor_products section)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tensor-products`` subcommand."""
    parser = subparsers.add_parser(
        "tensor-products",
        help="time and check the CG, Gaunt and vector Gaunt tensor products",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", required=True, help="netCDF file to write")
    parser.add_argument("--lmax", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6], metavar="L", help="input degrees (default: 1 2 3 4 5 6)")
    parser.add_argument("--batch", type=int, default=1000, help="batch size B (default: 1000)")
    parser.add_argument("--channels", type=int, default=1, help="channels C per batch item (default: 1)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement after one warm-up (default: 5)")
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="array backend: NumPy on cpu, CuPy on cuda (default: cpu)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="floating-point type (default: float32)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to run (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS/FFT threads for the CPU timings (default: 1; oversubscribed BLAS threads distort timings)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs and weights (default: 0)")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="refuse a run estimated to need more memory, e.g. 8G or 500M (default: what is available)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the study and write ``args.output``; returns the exit status."""
    if not args.lmax or min(args.lmax) < 0:
        raise ValueError(f"--lmax must list degrees >= 0, got {args.lmax}")
    for name in ("batch", "channels", "repeats", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    import numpy as np
    from threadpoolctl import threadpool_limits

    from pipeline.backend import backend_name, xp_for_device
    from pipeline.studies.tensor_products import estimate_study_bytes, run_study
    from pipeline.resources import check_memory, parse_memory_size
    from pipeline.storage import config_hash, provenance_attrs, write_netcdf

    xp = xp_for_device(args.device)
    check_memory(estimate_study_bytes(args.lmax, batch=args.batch, channels=args.channels, dtype=args.dtype,
                                      methods=args.methods), xp=xp,
                 limit_bytes=None if args.max_memory is None else parse_memory_size(args.max_memory),
                 what=f"tensor-products (--lmax up to {max(args.lmax)}, --batch {args.batch}, --channels {args.channels})",
                 setting="lower --batch, --channels or --lmax, or set --max-memory")
    device = "cuda" if backend_name(xp) == "cupy" else "cpu"

    start = time.perf_counter()
    with threadpool_limits(limits=args.threads):
        ds = run_study(
            args.lmax, batch=args.batch, channels=args.channels, repeats=args.repeats,
            xp=xp, dtype=np.dtype(args.dtype), device=device, methods=args.methods, rng=np.random.default_rng(args.seed),
        )
    config = {k: getattr(args, k) for k in ("lmax", "batch", "channels", "repeats", "device", "dtype", "methods", "seed", "threads")}
    ds.attrs.update(provenance_attrs(config=config, config_hash=config_hash(config), stage="tensor-products"))
    write_netcdf(ds, args.output)
    log.info("tensor-products: wrote %s (%d methods x %d degrees) in %.1f s", args.output, len(args.methods), len(args.lmax), time.perf_counter() - start)
    return 0
