"""Structures: read biomolecules, assign charges, generate lattices, normalise to one record.

The names below are imported on first use, so that light modules of this package (such as
:mod:`pipeline.structures.choices`, read by the command-line parsers) do not pull in xarray,
MDAnalysis or NumPy. The ingest function is :func:`pipeline.structures.ingest.ingest` (the
package attribute ``ingest`` is that submodule).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Structure": "pipeline.structures.record",
    "load_structure": "pipeline.structures.record",
    "make_lattice": "pipeline.structures.lattices",
    "structure_to_dataset": "pipeline.structures.record",
}

__all__ = ["Structure", "load_structure", "make_lattice", "structure_to_dataset"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
