"""Studies the workflow runs and records: timings and counts measured on the mathematics of the package.

:mod:`.tensor_products` times every tensor-product method (forward and backward) against the
dense reference and counts its expressivity, for the ``tensor-products`` stage. Kept out of
:mod:`pipeline.equivariant`, which holds the mathematics only.
"""
