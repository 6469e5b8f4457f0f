"""Schemas read from PostgreSQL's catalogs, compared, and the checks built on them.

``catalog`` reads a database's schema, ``compare`` tells two apart object by object,
``ephemeral`` makes a throwaway database on the configured server, ``roundtrip`` and
``drift`` are ``checkmigrations --roundtrip`` and ``--drift``, ``report`` renders them.
"""
