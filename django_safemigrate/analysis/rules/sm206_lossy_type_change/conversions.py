"""What one cast does to a column's values: which make it fail, which it changes, and how.

Every verdict and every example here is checked on PostgreSQL 15 by the rule's
tests, with the statement run on a real table.
"""

from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Context, Decimal

from django_safemigrate.analysis.rules.sm107_column_type_change_rewrites import ColumnType
from django_safemigrate.analysis.rules.sm206_lossy_type_change.texts import (
    INTEGER_MAX,
    INTEGER_NAMES,
    INTERVAL_FULL_RANGE,
    TEXT,
    precision_of,
    scale_of,
    widest_texts,
)

#: Session time zones in which ``timestamp`` and ``timestamptz`` hold the same values.
UTC_ZONES = frozenset({"UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT", "Zulu", "Universal"})

#: Enough digits for any ``numeric`` (1000 digits of precision, scale -1000 to 1000).
_DECIMALS = Context(prec=2100, Emin=-3000, Emax=3000)
_LONGEST_EXAMPLE = 40
_FLOATS = {"float4": 6, "float8": 15}  # significant digits any value keeps through the type
_MANTISSA_BITS = {"float4": 24, "float8": 53}
_INTEGER_BITS = {"int2": 15, "int4": 31, "int8": 63}
_INTEGER_DIGITS = {"int2": 4, "int4": 9, "int8": 18}  # numbers of that many digits all fit
_INTEGER_TO_FLOAT = {
    "float4": ("16777217", "1.6777216e+07"),
    "float8": ("9007199254740993", "9.007199254740992e+15"),
}
_NUMERIC_TO_FLOAT = {"float4": "1.2345679", "float8": "1.2345678901234567"}
_FLOAT_TO_NUMERIC = {"float4": ("1.2345678", "1.23457"), "float8": ("0.30000000000000004", "0.3")}
#: A valid text that the type stores in its own form, and the form it prints.
_REWRITTEN = {
    **dict.fromkeys(("int2", "int4", "int8"), ("007", "7")),
    "numeric": ("007.50", "7.50"),
    **dict.fromkeys(("float4", "float8"), ("007.50", "7.5")),
    "bool": ("yes", "true"),
    "uuid": ("A0EEBC999C0B4EF8BB6D6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "date": ("2020-1-2", "2020-01-02"),
    "time": ("1:02", "01:02:00"),
    "timetz": ("1:02+5", "01:02:00+05"),
    "timestamp": ("2020-1-2 3:04", "2020-01-02 03:04:00"),
    "timestamptz": ("2020-1-2 3:04+00", "2020-01-02 03:04:00+00"),
    "interval": ("90 minutes", "01:30:00"),
    "jsonb": ('{"a": 1, "a": 2}', '{"a": 2}'),
    "inet": ("2001:DB8::0001/64", "2001:db8::1/64"),
    "cidr": ("10.1/16", "10.1.0.0/16"),
    "macaddr": ("0800.2b01.0203", "08:00:2b:01:02:03"),
    "macaddr8": ("0800.2b01.0203.0405", "08:00:2b:01:02:03:04:05"),
}
#: Interval fields, smallest first, by their bit in the ``interval`` range modifier.
_INTERVAL_FIELDS = [
    (12, "second"),
    (11, "minute"),
    (10, "hour"),
    (3, "day"),
    (1, "month"),
    (2, "year"),
]
_INTERVAL_EXAMPLE = "1 year 2 mons 3 days 04:05:06"
_INTERVAL_KEPT = {
    "minute": "1 year 2 mons 3 days 04:05:00",
    "hour": "1 year 2 mons 3 days 04:00:00",
    "day": "1 year 2 mons 3 days",
    "month": "1 year 2 mons",
    "year": "1 year",
}
_CLOCK = {"time": "", "timetz": "+00", "interval": "", "timestamp": "", "timestamptz": "+00"}


@dataclasses.dataclass(frozen=True)
class Loss:
    """One way a cast fails on values or changes them."""

    #: Which values, and what happens to them.
    what: str
    #: ``True`` when the values change without an error; ``False`` when the statement fails.
    silent: bool
    #: A value of the old type as PostgreSQL prints it, and what it becomes (``None``: fails).
    example: tuple[str, str | None] | None = None

    def __str__(self) -> str:
        if self.example is None:
            return self.what
        before, after = self.example
        if after is None:
            return f"{self.what} (such as '{before}')"
        return f"{self.what} ('{before}' becomes '{after}')"


#: What the one cast between two other types does.
_PAIRS = {
    ("json", "jsonb"): Loss(
        "drops duplicate keys (the last one wins), the order of keys and the spacing",
        True,
        ('{"a": 1, "a": 2}', '{"a": 2}'),
    ),
    ("inet", "cidr"): Loss(
        "zeroes the bits of every address right of its netmask",
        True,
        ("10.0.0.1/24", "10.0.0.0/24"),
    ),
    ("macaddr8", "macaddr"): Loss(
        "fails on addresses whose 4th and 5th bytes are not ff:fe",
        False,
        ("08:00:2b:01:02:03:04:05", None),
    ),
}


def losses(old: ColumnType, new: ColumnType, *, explicit: bool, zone: str) -> list[Loss]:
    """How casting the values of ``old`` to ``new`` fails on them or changes them.

    ``explicit`` for a cast written in ``USING``; otherwise the assignment cast of an
    ``ALTER … TYPE`` without one. ``zone`` is the session's time zone.
    """
    o, n, utc = _name(old), _name(new), zone in UTC_ZONES
    if n in {"varchar", "bpchar"} and new.mods:
        return _too_long(old, new.mods[0], explicit=explicit, utc=utc)
    if n in TEXT:
        return []
    if o in TEXT:
        return _parsed(old, new, explicit=explicit, utc=utc)
    if o in _INTEGER_BITS and n == "bool":
        if not explicit:
            return [_no_assignment_cast(old, new)]
        return [Loss("turns every value but 0 into true", True, ("2", "true"))]
    if (o, n) in _PAIRS:
        return [_PAIRS[o, n]]
    return _numbers(old, new) + _times(old, new, zone, utc=utc)


def _name(t: ColumnType) -> str:
    return INTEGER_NAMES.get(t.name, t.name)


def _no_assignment_cast(old: ColumnType, new: ColumnType) -> Loss:
    return Loss(
        f"fails whatever the data: {old} has no automatic cast to {new}, so it needs USING",
        False,
    )


def _too_long(old: ColumnType, limit: int, *, explicit: bool, utc: bool) -> list[Loss]:
    texts: tuple[str, ...] | None = ()
    if _name(old) not in TEXT:
        texts = widest_texts(old, utc=utc)
        if texts is None or (texts and len(texts[-1]) <= limit):
            return []
    elif old.mods and old.mods[0] <= limit:
        return []
    longer = next((t for t in texts or () if len(t) > limit), None)
    what = f"values longer than {limit} characters"
    if explicit:
        # An explicit cast to varchar(n) or char(n) cuts the value to n characters.
        example = (longer, longer[:limit]) if longer else None
        return [Loss(f"truncates {what} without an error (the cast is explicit)", True, example)]
    if _name(old) in TEXT:
        # SQL's one exception: spaces past n are cut without an error.
        what += " (those longer only by spaces at the end lose the spaces without an error)"
    return [Loss(f"fails on {what}", False, (longer, None) if longer else None)]


def _parsed(old: ColumnType, new: ColumnType, *, explicit: bool, utc: bool) -> list[Loss]:
    if not explicit:
        return [_no_assignment_cast(old, new)]
    found = [Loss(f"fails on the first value that is not a valid {new}", False)]
    example = _REWRITTEN.get(_name(new))
    if example is not None and not (_name(new) == "timestamptz" and not utc):
        fits = not old.mods or len(example[0]) <= old.mods[0]
        found.append(
            Loss(f"rewrites the valid ones as {new} prints them", True, example if fits else None)
        )
    return found


def _numbers(old: ColumnType, new: ColumnType) -> list[Loss]:
    o, n = _name(old), _name(new)
    found: list[Loss] = []
    if o in _INTEGER_BITS and n in _INTEGER_BITS and _INTEGER_BITS[n] < _INTEGER_BITS[o]:
        found.append(_out_of_range(new, (str(INTEGER_MAX[n] + 1), None)))
    if o in _INTEGER_BITS and n in _MANTISSA_BITS and _INTEGER_BITS[o] > _MANTISSA_BITS[n]:
        what = f"rounds integers beyond ±{2 ** _MANTISSA_BITS[n]} to the nearest {new}"
        found.append(Loss(what, True, _INTEGER_TO_FLOAT[n]))
    if (o == "numeric" or o in _FLOATS) and n in _INTEGER_BITS:
        if o in _FLOATS or not old.mods or scale_of(old.mods) > 0:
            after = "1" if o == "numeric" else "0"  # half away from zero; floats: half to even
            example = _example(Decimal("0.5"), old, after)
            found.append(Loss("rounds every value to a whole number", True, example))
        if o in _FLOATS or not old.mods or _digits(old.mods) > _INTEGER_DIGITS[n]:
            value = Decimal("1e19") if o in _FLOATS else Decimal(INTEGER_MAX[n] + 1)
            found.append(_out_of_range(new, _example(value, old, None)))
    if (o == "numeric" or o in _FLOATS or o in _INTEGER_BITS) and n == "numeric":
        found += _to_numeric(old, new)
    if o == "numeric" and n in _FLOATS and (not old.mods or old.mods[0] > _FLOATS[n]):
        after = _NUMERIC_TO_FLOAT[n]
        what = f"rounds values with more than {_FLOATS[n]} significant digits to the nearest {new}"
        found.append(Loss(what, True, _example(Decimal("1.2345678901234567891"), old, after)))
    if (o, n) == ("float8", "float4"):
        what = "rounds values with more than 6 significant digits to the nearest real"
        found.append(Loss(what, True, ("1.23456789", "1.2345679")))
        found.append(_out_of_range(new, ("1e+300", None)))
    return found


def _to_numeric(old: ColumnType, new: ColumnType) -> list[Loss]:
    o, found = _name(old), []
    if o in _FLOATS and (not new.mods or new.mods[0] > _FLOATS[o]):
        # PostgreSQL converts a float to numeric through its first 15 (6) digits.
        what = f"keeps only the first {_FLOATS[o]} significant digits of every value"
        found.append(Loss(what, True, _FLOAT_TO_NUMERIC[o]))
    if not new.mods:
        return found
    scale = scale_of(new.mods)
    old_mods = old.mods if o == "numeric" else ()
    if o not in _INTEGER_BITS and (not old_mods or scale < scale_of(old_mods)):
        value = Decimal(5).scaleb(-scale - 1)
        after = _plain(value.quantize(Decimal(1).scaleb(-scale), ROUND_HALF_UP, _DECIMALS))
        places = _count(scale, "decimal place") if scale >= 0 else f"multiples of {10**-scale}"
        found.append(Loss(f"rounds every value to {places}", True, _example(value, old, after)))
    limit = _power(_digits(new.mods))
    if o in _INTEGER_BITS:
        overflows = INTEGER_MAX[o] >= limit
    else:
        overflows = not old_mods or _digits(new.mods) < _digits(old_mods)
    if overflows:
        what = f"fails on values of ±{_plain(limit)} or more"
        value = max(limit, Decimal(1)) if o in _INTEGER_BITS else limit
        found.append(Loss(what, False, _example(value, old, None)))
    return found


def _times(old: ColumnType, new: ColumnType, zone: str, *, utc: bool) -> list[Loss]:
    o, n, found = _name(old), _name(new), []
    old_p, new_p = precision_of(o, old.mods), precision_of(n, new.mods)
    if old_p is not None and new_p is not None and new_p < old_p:
        example = None
        if o == n and (utc or o != "timestamptz"):
            day = "2020-01-01 " if o.startswith("timestamp") else ""
            clock = "00:00:01" if new_p == 0 else "00:00:00." + "6" * (new_p - 1) + "7"
            before = f"{day}00:00:00.{'6' * old_p}{_CLOCK[o]}"
            example = (before, f"{day}{clock}{_CLOCK[o]}")
        digits = f"{_count(new_p, 'digit')} after the point" if new_p else "whole seconds"
        found.append(Loss(f"rounds fractional seconds to {digits}", True, example))
    if o == n == "interval":
        found += _interval_fields(old.mods, new.mods)
    if o in {"timestamp", "timestamptz"} and n in {"date", "time", "timetz"}:
        part = "time of day" if n == "date" else "date"
        zoned = o == "timestamptz"
        before = "2020-01-01 10:00:00" + ("+00" if zoned else "")
        after = "2020-01-01" if n == "date" else "10:00:00" + ("+00" if n == "timetz" else "")
        example = (before, after) if utc or not zoned else None
        found.append(Loss(f"drops the {part} of every value", True, example))
    if (o, n) == ("timetz", "time"):
        found.append(Loss("drops the UTC offset of every value", True, ("10:00:00+05", "10:00:00")))
    if (o, n) == ("interval", "time"):
        example = ("1 day 02:00:00", "02:00:00")
        found.append(Loss("drops the years, months and days of every value", True, example))
    if {o, n} == {"timestamp", "timestamptz"} and not utc:
        # Outside UTC a wall-clock time and an instant do not map one to one: the
        # hour the clocks skip has no instant, the hour they repeat has two.
        if o == "timestamptz":
            what = (
                f"turns every value into local time in the session time zone {zone}, where "
                "the two instants of the hour the clocks repeat become the same local time"
            )
        else:
            what = (
                f"reads every value as local time in the session time zone {zone}, where a "
                "time in the hour the clocks skip moves by the gap"
            )
        found.append(Loss(what, True))
    return found


def _interval_fields(old: tuple[int, ...], new: tuple[int, ...]) -> list[Loss]:
    def smallest(mods: tuple[int, ...]) -> int:
        mask = mods[0] if mods else INTERVAL_FULL_RANGE
        return next((i for i, (bit, _) in enumerate(_INTERVAL_FIELDS) if mask >> bit & 1), 0)

    old_rank, new_rank = smallest(old), smallest(new)
    if new_rank <= old_rank:
        return []
    unit = _INTERVAL_FIELDS[new_rank][1]
    full = not old or old[0] == INTERVAL_FULL_RANGE
    example = (_INTERVAL_EXAMPLE, _INTERVAL_KEPT[unit]) if full else None
    return [Loss(f"drops the parts of every value smaller than a {unit}", True, example)]


def _out_of_range(new: ColumnType, example: tuple[str, str | None] | None) -> Loss:
    return Loss(f"fails on values out of the range of {new}", False, example)


def _digits(mods: tuple[int, ...]) -> int:
    """Digits before the point of ``numeric(p, s)``."""
    return mods[0] - scale_of(mods)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _power(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent, _DECIMALS)


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _example(value: Decimal, old: ColumnType, after: str | None) -> tuple[str, str | None] | None:
    """``(value as old prints it, after)``, or ``None`` when ``old`` cannot hold ``value``."""
    if _name(old) == "numeric" and old.mods:
        exact = value.quantize(_power(-scale_of(old.mods)), context=_DECIMALS) == value
        if not exact or value >= _power(_digits(old.mods)):
            return None
    before = _text(value, old)
    return (before, after) if len(before) <= _LONGEST_EXAMPLE else None


def _text(value: Decimal, old: ColumnType) -> str:
    """``value`` as PostgreSQL prints it as a value of ``old`` (a number type)."""
    o = _name(old)
    if o in _FLOATS:
        # Shortest exact digits; the exponent form below 1e-4 and from 1e15 (real: 1e6).
        exponent = value.adjusted()
        if -4 <= exponent < (6 if o == "float4" else 15):
            return _plain(value.normalize())
        mantissa = _plain(value.scaleb(-exponent).normalize())
        return f"{mantissa}e{exponent:+03d}"
    if o == "numeric" and old.mods:
        return _plain(value.quantize(_power(-max(scale_of(old.mods), 0)), context=_DECIMALS))
    return _plain(value)
