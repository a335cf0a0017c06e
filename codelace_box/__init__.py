"""codelace-box: a self-hosted LLM gateway for a team, shipped as one executable.

Importing it first imports peewee with psycopg out of sight: peewee imports psycopg whenever it
is installed (about 0.3 s, most of a CLI command's start), and the box needs it only for a
PostgreSQL `database.url`; db/postgres.py imports it then and binds peewee's adapter to it.
"""

import sys

__version__ = "0.1.0"


def _import_peewee_without_psycopg() -> None:
    if "peewee" in sys.modules or "psycopg" in sys.modules:
        return
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # `import psycopg` fails
    try:
        import peewee  # noqa: F401
    finally:
        del sys.modules["psycopg"]


_import_peewee_without_psycopg()
