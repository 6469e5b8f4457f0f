"""Constants the data migration reads (through an import)."""

KEEP = "keep"
