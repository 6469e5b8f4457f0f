"""What a migration file declares about its phase.

Two spellings are understood:

- ``safemigrate_phase = "pre_deploy" | "post_deploy" | "always"``, this app's own;
- ``safe = Safe.before_deploy()`` / ``Safe.after_deploy(delay=timedelta(...))`` /
  ``Safe.always()``, the older package of the same import name, so its projects
  switch without editing their migration files. The uncalled forms
  (``safe = Safe.before_deploy``) are accepted as that package accepts them.

This module imports nothing from Django's models: migration files import it
before Django is set up.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import timedelta
from typing import Any

from django_safemigrate.enums import Phase

#: This app's attribute on a Migration class.
PHASE_ATTRIBUTE = "safemigrate_phase"
#: The older package's attribute.
LEGACY_ATTRIBUTE = "safe"


class When(enum.Enum):
    """The older package's three markings."""

    always = "always"
    before_deploy = "before_deploy"
    after_deploy = "after_deploy"


@dataclasses.dataclass(frozen=True)
class Safe:
    """``safe = Safe.before_deploy()`` and friends on a migration class."""

    when: When
    #: For ``after_deploy``: how long after ``safemigrate`` first saw the migration it may
    #: run in the pre-deploy phase too.
    delay: timedelta | None = None

    @classmethod
    def always(cls) -> Safe:
        return cls(when=When.always)

    @classmethod
    def before_deploy(cls) -> Safe:
        return cls(when=When.before_deploy)

    @classmethod
    def after_deploy(cls, *, delay: timedelta | None = None) -> Safe:
        if delay is not None and not isinstance(delay, timedelta):
            raise TypeError(f"Safe.after_deploy(delay=...) takes a timedelta, not {delay!r}")
        return cls(when=When.after_deploy, delay=delay)


_PHASE_OF = {
    When.always: Phase.ALWAYS,
    When.before_deploy: Phase.PRE_DEPLOY,
    When.after_deploy: Phase.POST_DEPLOY,
}


class InvalidMarker(ValueError):
    """A migration declares its phase with a value that means nothing."""


@dataclasses.dataclass(frozen=True)
class Declared:
    """A phase a migration file declares, and where it says so."""

    phase: Phase
    source: str
    delay: timedelta | None = None


def declared_phase(migration: Any) -> Declared | None:
    """The phase ``migration`` declares, or ``None``; raises :class:`InvalidMarker`."""
    ours = getattr(migration, PHASE_ATTRIBUTE, None)
    found: Declared | None = None
    if ours is not None:
        try:
            found = Declared(Phase(ours), f"{PHASE_ATTRIBUTE} = {ours!r}")
        except ValueError:
            raise InvalidMarker(
                f"{PHASE_ATTRIBUTE} = {ours!r} is not one of "
                f"{', '.join(repr(p.value) for p in Phase)}"
            ) from None
    if hasattr(migration, LEGACY_ATTRIBUTE):
        # Any value counts, ``None`` included: the older package refused it too.
        marker = _legacy_marker(getattr(migration, LEGACY_ATTRIBUTE))
        from_legacy = Declared(
            _PHASE_OF[marker.when], f"safe = Safe.{marker.when.value}()", marker.delay
        )
        if found is not None and found.phase is not from_legacy.phase:
            raise InvalidMarker(
                f"it declares both {found.source} and {from_legacy.source}, which disagree"
            )
        found = found or from_legacy
    return found


def _legacy_marker(value: Any) -> Safe:
    # The uncalled class methods (``safe = Safe.before_deploy``) mean the same as calling them.
    for name in ("always", "before_deploy", "after_deploy"):
        if _same_method(value, name):
            result: Safe = value()
            return result
    if _looks_like_safe(value):
        when = _coerce_when(value.when)
        delay = getattr(value, "delay", None)
        if when is not None and (delay is None or isinstance(delay, timedelta)):
            return Safe(when, delay if when is When.after_deploy else None)
    raise InvalidMarker(
        f"safe = {value!r} is not Safe.before_deploy(), Safe.after_deploy() or Safe.always()"
    )


def _same_method(value: Any, name: str) -> bool:
    owner = getattr(value, "__self__", None)
    return (
        callable(value)
        and isinstance(owner, type)
        and owner.__name__ == "Safe"
        and getattr(value, "__name__", None) == name
    )


def _looks_like_safe(value: Any) -> bool:
    # A ``Safe`` of this module, or of another copy of it (the package installed twice
    # under different paths in one process, as test runners sometimes do).
    return type(value).__name__ == "Safe" and hasattr(value, "when")


def _coerce_when(when: Any) -> When | None:
    raw = getattr(when, "value", when)
    try:
        return When(raw)
    except ValueError:
        return None
