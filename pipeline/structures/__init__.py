"""Structures: read biomolecules, assign charges, generate lattices, normalise to one record."""

from pipeline.structures.record import Structure, load_structure, structure_to_dataset

__all__ = ["Structure", "load_structure", "structure_to_dataset"]
