"""``python -m fastxent bench``, kept apart from the library: the run and its command line
(``run``), the inputs, sweep and small calls (``workload``), what it shows (``report``) and
the GPU's own run (``gpu``)."""
