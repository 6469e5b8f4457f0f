"""How ``checkmigrations`` agrees with two peer linters on their own test corpora.

``run.py`` is the script; the modules beside it read each corpus (``source``,
``linter_corpus``, ``squawk_corpus``), build and judge a throwaway project (``project``),
compare the verdicts in one vocabulary (``vocabulary``), classify the disagreements
(``classification``, ``disagreements.toml``) and write the tables (``report``).
``verify/`` holds the PostgreSQL checks behind the disagreements classified as the
peer's error.
"""
