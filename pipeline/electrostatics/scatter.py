"""Scatter–gather build of the long range: coefficient tensors of atom chunks, summed.

The map from charges to long-range Chebyshev coefficients is linear, so a structure can be cut
into contiguous atom ranges (:func:`chunk_range`), each range's coefficient tensor built in its
own job with the plan of the *whole* structure (:func:`chunk_to_dataset` stores it with the
plan), and the tensors summed in a gather job (:func:`gather_coefficients`), which checks that
every chunk was built from the same structure (:func:`structure_fingerprint`) with the same
parameters and that the ranges cover atoms 0 … n−1 exactly once. Each chunk also interpolates
its own long-range grid at *every* atom of the structure (N·P³, like one build), so the gather
sums the long range at the atoms too and needs neither the Tucker form nor a grid of its own for
them. Chunk files are netCDF: variables ``coefficients (cheb_x, cheb_y, cheb_z)`` and
``atom_long (atom)`` (e/Å) and attributes ``build_params`` (JSON), ``chunk``, ``chunks``,
``atom_start``, ``atom_stop``, ``n_atoms``, ``structure_sha256``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING

import numpy as np

from pipeline.backend import namespace_of, to_host
from pipeline.storage import provenance_attrs, read_netcdf

if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger(__name__)

#: Attributes every chunk file carries.
CHUNK_ATTRS = ("build_params", "chunk", "chunks", "atom_start", "atom_stop", "n_atoms", "structure_sha256")


def chunk_range(n_atoms: int, chunk: int, chunks: int) -> tuple[int, int]:
    """Atom range [start, stop) of chunk ``chunk`` (0-based) out of ``chunks`` near-equal ranges."""
    if chunks < 1:
        raise ValueError(f"chunks must be ≥ 1, got {chunks}")
    if not 0 <= chunk < chunks:
        raise ValueError(f"chunk must be in 0 … {chunks - 1} for {chunks} chunks, got {chunk}")
    return chunk * n_atoms // chunks, (chunk + 1) * n_atoms // chunks


def structure_fingerprint(positions, charges) -> str:
    """SHA-256 (hex) of the float64 positions (Å) and charges (e), identifying the structure."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(to_host(positions), dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(to_host(charges), dtype=np.float64).tobytes())
    return digest.hexdigest()


def params_json(params: dict) -> str:
    """Canonical JSON of build parameters (sorted keys), compared between chunks."""
    return json.dumps(params, sort_keys=True)


def chunk_to_dataset(coeffs, atom_long, params: dict, *, chunk: int, chunks: int, atom_range: tuple[int, int], n_atoms: int,
                     fingerprint: str, seconds: float, structure_attrs: dict | None = None) -> xr.Dataset:
    """Dataset of one chunk's coefficient tensor with everything the gather job checks."""
    import xarray as xr

    ds = xr.Dataset(
        {
            "coefficients": (("cheb_x", "cheb_y", "cheb_z"), to_host(coeffs),
                             {"units": "e/angstrom",
                              "long_name": "long-range Chebyshev coefficients (low to high) of this chunk's charges"}),
            "atom_long": (("atom",), to_host(atom_long),
                          {"units": "e/angstrom",
                           "long_name": "long range of this chunk's charges at every atom of the structure"}),
        }
    )
    attrs = {key: (structure_attrs or {})[key] for key in ("structure_id", "source") if key in (structure_attrs or {})}
    attrs.update(
        build_params=params_json(params), chunk=int(chunk), chunks=int(chunks), atom_start=int(atom_range[0]),
        atom_stop=int(atom_range[1]), n_atoms=int(n_atoms), structure_sha256=fingerprint,
        time_long_range_coefficients_s=float(seconds),
    )
    ds.attrs = provenance_attrs(**attrs)
    return ds


def read_chunk(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Coefficient tensor, long range at the atoms and attributes of a chunk file.

    ``ValueError`` naming what is missing.
    """
    ds = read_netcdf(path)
    for name in ("coefficients", "atom_long"):
        if name not in ds:
            raise ValueError(f"{path}: not a potential chunk file (no variable {name!r})")
    missing = [key for key in CHUNK_ATTRS if key not in ds.attrs]
    if missing:
        raise ValueError(f"{path}: not a potential chunk file, missing attribute(s) {', '.join(missing)}")
    return ds["coefficients"].values, ds["atom_long"].values, dict(ds.attrs)


def gather_coefficients(paths, params: dict, *, n_atoms: int, fingerprint: str, xp=np):
    """Sum the chunk tensors and atom long ranges after checking plan, structure and atom coverage.

    Parameters
    ----------
    paths : sequence of path-like
        Chunk files (any order).
    params : dict
        Build parameters of the whole structure (``BuildSetup.params``); every chunk must match.
    n_atoms : int
    fingerprint : str
        :func:`structure_fingerprint` of the whole structure.
    xp : array module for the result

    Returns
    -------
    coeffs : (m1, m2, m3) array on ``xp``
    atom_long : (n_atoms,) array on ``xp``
        Φ_L at every atom (self terms included), e/Å.
    seconds : float
        Sum of the chunks' own coefficient times (their attribute), for the record.
    """
    if not paths:
        raise ValueError("no chunk files given")
    expected = params_json(params)
    ranges = []
    total = atom_total = None
    seconds = 0.0
    chunks_seen = set()
    for path in paths:
        coeffs, atom_long, attrs = read_chunk(path)
        if attrs["structure_sha256"] != fingerprint or int(attrs["n_atoms"]) != n_atoms:
            raise ValueError(f"{path}: built from a different structure (n_atoms {attrs['n_atoms']}, "
                             f"expected {n_atoms}; fingerprint differs or matches: "
                             f"{attrs['structure_sha256'] == fingerprint})")
        if attrs["build_params"] != expected:
            raise ValueError(f"{path}: built with different parameters than the gather job derives from the "
                             f"structure and its options:\n  chunk:  {attrs['build_params']}\n  gather: {expected}")
        chunks_seen.add(int(attrs["chunks"]))
        ranges.append((int(attrs["atom_start"]), int(attrs["atom_stop"]), str(path)))
        seconds += float(attrs.get("time_long_range_coefficients_s", 0.0))
        total = coeffs if total is None else total + coeffs
        atom_total = atom_long if atom_total is None else atom_total + atom_long
    if len(chunks_seen) > 1:
        raise ValueError(f"chunk files disagree on the number of chunks: {sorted(chunks_seen)}")
    check_coverage(ranges, n_atoms)
    log.info("gather: %d chunks, atoms 0..%d covered once", len(ranges), n_atoms - 1)
    return xp.asarray(total), xp.asarray(atom_total), seconds


def check_coverage(ranges, n_atoms: int) -> None:
    """Raise ``ValueError`` unless the [start, stop) ranges tile 0 … n_atoms − 1 exactly once.

    Parameters
    ----------
    ranges : list of (start, stop, label)
    n_atoms : int
    """
    pos = 0
    for start, stop, label in sorted(ranges):
        if start < pos:
            raise ValueError(f"{label}: atoms {start}..{stop - 1} overlap atoms already covered (up to {pos - 1})")
        if start > pos:
            raise ValueError(f"atoms {pos}..{start - 1} are in no chunk file (next: {label} from {start})")
        pos = stop
    if pos != n_atoms:
        raise ValueError(f"atoms {pos}..{n_atoms - 1} are in no chunk file (structure has {n_atoms} atoms)")


def chunk_coefficients(positions, charges, setup, chunk: int, chunks: int):
    """Long range of atom chunk ``chunk`` of ``chunks`` under ``setup`` (a ``BuildSetup``).

    Returns
    -------
    coeffs : (m1, m2, m3) array
        Chebyshev coefficients of the chunk's charges, e/Å.
    atom_long : (n_atoms,) array
        Long range of the chunk's charges at every atom of the structure, e/Å.
    atom_range : (start, stop)
    """
    from pipeline.electrostatics.build import long_range_parts

    start, stop = chunk_range(int(positions.shape[0]), chunk, chunks)
    xp = namespace_of(positions, charges)
    if stop == start:
        return xp.zeros(tuple(setup.plan.degree)), xp.zeros(positions.shape[0]), (start, stop)
    coeffs, atom_long = long_range_parts(setup, positions[start:stop], charges[start:stop], targets=positions)
    return coeffs, atom_long, (start, stop)
