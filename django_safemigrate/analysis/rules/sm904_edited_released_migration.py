"""A released migration was edited (its checksum differs from the lockfile).

The lockfile lists the checksum of every migration that was released. A
migration whose file no longer matches has already run somewhere in its old
form; environments that ran it will not run it again, so they drift apart.

Fix: restore the released version and put the change in a new migration. If
the edit is deliberate and harmless (the lockfile is older than a squash, say),
regenerate the lockfile with ``python manage.py checkmigrations
--update-lockfile`` in a reviewed commit.
"""

from __future__ import annotations

from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Risk

rule = Rule(code="SM904", name="edited-released-migration", severity=Risk.RISKY, doc=__doc__)
