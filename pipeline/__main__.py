"""Run the command line: ``python -m pipeline <stage> ...``."""

from pipeline.cli import main

raise SystemExit(main())
