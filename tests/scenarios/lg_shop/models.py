"""No models: the migrations of this app only create and drop plain tables (RunSQL).

Tests write further migrations into a copy of this package, each carrying the older
package's ``safe = Safe...`` marker (or a wrong one), to build each dependency graph.
"""
