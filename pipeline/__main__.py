"""Run the command line: ``python -m pipeline <stage> ...``.

A stage that returns has written and renamed its files, so the process then ends without the
interpreter's finalisation (tearing down some 1300 modules and the Numba, BLAS and HDF5
runtimes took 0.4 s of a 2.6 s ``potential`` run at 10⁵ atoms): the exit handlers run and the
streams are flushed first. An exception still ends the process the ordinary way.
"""

import atexit
import os
import sys

from pipeline.cli import main

code = main()
atexit._run_exitfuncs()  # logging.shutdown and every other registered handler
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
