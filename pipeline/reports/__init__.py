"""Aggregated reports of a study: one netCDF Dataset, PNG figures and a terminal summary.

- :mod:`pipeline.reports.inputs` — read one stage output (structure, potential, tensor-product
  or descriptor netCDF file) into a plain record, checking what the report needs;
- :mod:`pipeline.reports.benchmarks` — read the Snakemake benchmark TSV files;
- :mod:`pipeline.reports.variables` — turn those records into report variables with units;
- :mod:`pipeline.reports.datasets` — build the report Dataset (the only module building one);
- :mod:`pipeline.reports.figures` — draw the report's figures as PNG files;
- :mod:`pipeline.reports.tables` — format the report as plain-text tables.

Nothing is re-exported here so that reading a report does not import matplotlib.
"""
