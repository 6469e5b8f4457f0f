"""Helpers for projects (and this app's own tests) that need a real PostgreSQL."""
