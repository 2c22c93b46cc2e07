"""``python -m mfcore.motion``: :func:`mfcore.motion.cli.main`."""

from .cli import main

main()
