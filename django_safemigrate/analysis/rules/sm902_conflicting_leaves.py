"""Several leaf migrations in one app.

Two branches each added a migration after the same parent. Django refuses to
migrate such a graph ("Conflicting migrations detected"), so the deploy stops.

Fix: ``python manage.py makemigrations --merge`` (and check that the two
migrations do not touch the same table in incompatible ways), or renumber one
branch's migration onto the other.
"""

from __future__ import annotations

from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Risk

rule = Rule(code="SM902", name="conflicting-leaf-migrations", severity=Risk.RISKY, doc=__doc__)
