"""Structures: read biomolecules, assign charges, generate lattices, normalise to one record."""

from pipeline.structures.ingest import ingest
from pipeline.structures.lattices import make_lattice
from pipeline.structures.record import Structure, load_structure, structure_to_dataset

__all__ = ["Structure", "ingest", "load_structure", "make_lattice", "structure_to_dataset"]
