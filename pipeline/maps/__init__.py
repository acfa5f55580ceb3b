"""Potential maps and point evaluations of a stored potential (the ``evaluate`` stage).

- :mod:`.request` — :class:`~.request.EvaluationRequest`, the stage's settings, validated once,
  and the memory estimates of maps and point sets (plain arithmetic: it imports no numerical
  library, so a map too large for the machine is refused at once);
- :mod:`.grid` — the axes of a regular map over the potential's box;
- :mod:`.points` — reading points files (.npy, .csv) with errors that name file and line;
- :mod:`.evaluate` — :func:`~.evaluate.evaluate`: potential (and field) at the points or on the
  map, written as netCDF (:mod:`.datasets`) and optionally OpenDX (:mod:`.dx`).

This ``__init__`` imports nothing, so that importing :mod:`.request` stays light.
"""
