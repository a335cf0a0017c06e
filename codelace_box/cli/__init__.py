"""The command line (click): `main` is the `codelace-box` entry point; `main.py` holds the
group and the server commands, `manage.py` accounts and money, `catalog.py` providers and
models, `support.py` the shared state and output, `group.py` the error handling."""

from codelace_box.cli.main import main

__all__ = ["main"]
