"""``python -m mfcore.calibration``: :func:`mfcore.calibration.cli.main`."""

from .cli import main

raise SystemExit(main())
