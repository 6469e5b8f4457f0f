"""Classify migrations: every operation judged by the SQL it will really run."""
