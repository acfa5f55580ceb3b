"""Names of the array devices a stage can run on, for command lines and settings (no imports).

``--device cpu`` runs on NumPy, ``cuda`` on CuPy, ``auto`` on CuPy when a GPU is usable and NumPy
otherwise (:func:`pipeline.backend.xp_for_device`). Kept apart from :mod:`pipeline.backend`, which
imports NumPy, so parsers can list the choices without loading it.
"""

DEVICES = ("cpu", "cuda", "auto")
