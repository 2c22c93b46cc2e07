"""mfbook: the machinery of the MetaFuse book, apart from the science in ``mfcore``.

``run_book`` (execute the notebooks and publish their results), ``plan`` (which chapter reads which), ``site``
(stage the executed chapters for the site; ``site_notebook``: an executed notebook as a page shows it), ``chapter``
(what every notebook does at its start and end: seeding, output folder, provenance), ``cache`` (tensors on disk keyed
by a hash of what produced them), ``progress`` (progress bars: text in batch runs), ``speed`` (timings for the
benchmarks), ``plots`` (figures the chapters share), ``tables`` (tables and Markdown as a page shows them), ``adapt``
(the command line of your-own-cameras), ``paths``. It imports ``mfcore``; ``mfcore`` never imports it.
"""
