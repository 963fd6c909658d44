"""The ``agpo`` command line (``cli.main:app``); one module per command group."""
