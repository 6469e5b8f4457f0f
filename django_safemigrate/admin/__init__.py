"""The ledger, the decisions and the review screen in the Django admin.

The ledger (runs, migration records) and the decisions are read-only: they are
records, not forms. Governed migrations are read-only too; a reviewer with the
``decide_migration`` permission approves or rejects one from its page, and each
decision is a new, append-only :class:`~django_safemigrate.models.Review` row.
"""

from django_safemigrate.admin import ledger, review

__all__ = ["ledger", "review"]
