"""``python -m mfbook.run_book``: :func:`mfbook.run_book.cli.main`."""

from .cli import main

main()
