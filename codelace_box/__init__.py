"""codelace-box: a self-hosted LLM gateway for a team, shipped as one executable.

Importing it first imports peewee with psycopg out of sight: peewee imports psycopg whenever it
is installed (about 0.3 s, most of a CLI command's start), and the box needs it only for a
PostgreSQL `database.url`; db/postgres.py imports it then and binds peewee's adapter to it.

It also drops a PROMETHEUS_MULTIPROC_DIR the process inherited (a container image or a unit
file shared with a gunicorn app sets it) before prometheus_client reads it at import: the
folder is serve's own, made for its workers (metrics.enable_multiprocess, which names it in
OWNED_METRICS_ENV too); another would mix other processes' and earlier runs' values into
/metrics.
"""

import os
import sys

__version__ = "0.1.0"
OWNED_METRICS_ENV = "_CODELACE_METRICS_DIR"  # the PROMETHEUS_MULTIPROC_DIR serve made


def _forget_inherited_metrics_folder() -> None:
    owned = os.environ.get(OWNED_METRICS_ENV)
    for name in ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"):
        if name in os.environ and os.environ[name] != owned:
            del os.environ[name]


def _import_peewee_without_psycopg() -> None:
    if "peewee" in sys.modules or "psycopg" in sys.modules:
        return
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # `import psycopg` fails
    try:
        import peewee  # noqa: F401
    finally:
        del sys.modules["psycopg"]


_forget_inherited_metrics_folder()
_import_peewee_without_psycopg()
