"""No models: tests/test_state_walk.py walks these migrations' history, nothing imports it.

With ``sw_shop``, a history of the changes whose SQL depends on models other than the one
changed: foreign keys to a ``to_field`` and to a primary key whose type, name or table
changes, a multi-table child and a proxy, a many-to-many field, a renamed model.
"""
