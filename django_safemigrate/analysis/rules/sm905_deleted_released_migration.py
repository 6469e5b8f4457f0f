"""A released migration was deleted.

The lockfile lists a migration whose file is gone. Databases that ran it keep
its row in ``django_migrations``; a migration that depends on it no longer
resolves, and a fresh database will not get what it did.

Fix: restore the file. To retire old migrations, squash them
(``squashmigrations``) and keep the originals until every environment ran the
squash, then remove them and update the lockfile in the same reviewed commit.
"""

from __future__ import annotations

from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Risk

rule = Rule(code="SM905", name="deleted-released-migration", severity=Risk.RISKY, doc=__doc__)
