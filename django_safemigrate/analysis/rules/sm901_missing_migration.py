"""Model changes without a migration.

The models say one thing and the migrations another: the next
``makemigrations`` run (maybe on someone else's branch, maybe in production's
hotfix) will generate a migration nobody reviewed, and until then the code
queries columns that the migrations never created.

Fix: run ``python manage.py makemigrations`` and commit the migration with the
model change.
"""

from __future__ import annotations

from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Risk

rule = Rule(code="SM901", name="missing-migration", severity=Risk.RISKY, doc=__doc__)
