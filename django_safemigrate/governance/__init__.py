"""Governance: which migrations of a plan may run now (reviews, phases, markers)."""
