"""django_safemigrate: migration governance for Django on PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Backfill", "Safe", "When", "__version__"]

if TYPE_CHECKING:
    from django_safemigrate.execution.backfill import Backfill

from django_safemigrate.governance.markers import Safe, When


def __getattr__(name: str) -> Any:
    # Imported lazily: migration files import this package before Django is set up.
    if name == "Backfill":
        from django_safemigrate.execution.backfill import Backfill

        return Backfill
    raise AttributeError(name)
