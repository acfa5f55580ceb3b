"""Names the structure stages offer (force fields, lattice types...), importable without NumPy.

The command-line parsers of ``ingest`` and ``lattice`` take their ``choices`` from here, so that
``python -m pipeline ingest --help`` does not import the numerical modules.
"""

#: Force fields pdb2pqr assigns charges from (its ``--ff`` names).
FORCEFIELDS = ("AMBER", "CHARMM", "PARSE")
#: Naming schemes pdb2pqr can write residue and atom names in (its ``--ffout`` names).
FFOUT_NAMES = ("AMBER", "CHARMM", "PARSE", "TYL06", "PEOEPB", "SWANSON")
#: Periodic crystals of conventional cubic cells.
CRYSTAL_TYPES = ("rocksalt", "cscl", "zincblende")
#: Charge-neutral Evjen-weighted cubes around a centre cation (rock salt, CsCl, zinc blende).
EVJEN_TYPES = ("evjen", "evjen_cscl", "evjen_zincblende")
#: Every type the ``lattice`` stage generates.
LATTICE_TYPES = (*CRYSTAL_TYPES, *EVJEN_TYPES)
#: Which ions sit on the faces of a CsCl or zinc-blende Evjen cube; ``mixed`` averages both.
TERMINATIONS = ("cation", "anion", "mixed")
#: Cells a periodic crystal is built from (``primitive``: rock salt only, triclinic, 2 ions).
CELLS = ("conventional", "primitive")
#: Sublattices an impurity may occupy.
IMPURITY_SITES = ("cation", "anion", "any")
