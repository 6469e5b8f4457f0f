"""A migration was edited after it was applied to this database.

The ledger recorded the migration's checksum when it was applied. The file, or
project code its ``RunPython`` or custom operations reach (a helper, a module
constant), now means something else, so the database and the migration history
disagree: other environments will apply the new version, this one never will.
Checksums recorded by an earlier version of django_safemigrate are compared with
that version's algorithm, so upgrading never makes history look edited.

Fix: restore the applied version of the file and put the change in a new
migration. ``safemigrate`` refuses to deploy in this state (exit 3) unless
``SAFEMIGRATE["CHECKSUM_MISMATCH"] = "warn"``.
"""

from __future__ import annotations

from django_safemigrate.analysis.registry import Rule
from django_safemigrate.enums import Risk

rule = Rule(code="SM903", name="edited-applied-migration", severity=Risk.RISKY, doc=__doc__)
