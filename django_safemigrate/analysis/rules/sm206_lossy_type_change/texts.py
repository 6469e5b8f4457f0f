"""How long the text of a value can get, type by type (what a cast to ``varchar(n)`` keeps).

Each type maps to texts of its values, shortest first, the last one the widest
the type can print with PostgreSQL's default output settings (``DateStyle``
ISO, ``IntervalStyle`` postgres, ``extra_float_digits`` 1). The tests run every
one of them through PostgreSQL 15 to check it is a value of the type printed as
PostgreSQL prints it.
"""

from __future__ import annotations

from django_safemigrate.analysis.rules.sm107_column_type_change_rewrites import ColumnType

#: Types whose values are text: a cast between them keeps the characters.
TEXT = frozenset({"text", "varchar", "bpchar", "citext"})
#: Integer types by internal name, with their ``serial`` spellings.
INTEGER_NAMES = {
    "int2": "int2",
    "smallserial": "int2",
    "serial2": "int2",
    "int4": "int4",
    "serial": "int4",
    "serial4": "int4",
    "int8": "int8",
    "bigserial": "int8",
    "serial8": "int8",
}
#: The widest value of each integer type, and its largest one.
INTEGER_WIDEST = {"int2": "-32768", "int4": "-2147483648", "int8": "-9223372036854775808"}
INTEGER_MAX = {"int2": 32767, "int4": 2147483647, "int8": 9223372036854775807}
#: Types whose text has no length limit.
UNBOUNDED = frozenset({"json", "jsonb", "xml", "bytea", "tsvector"})
#: ``interval``'s first modifier when no field range (``DAY TO SECOND``…) is given.
INTERVAL_FULL_RANGE = 32767
MAX_PRECISION = 6

_FIXED = {
    "bool": ("true", "false"),
    "uuid": ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",),
    "float4": ("0.33333334", "-1.36770935e-33"),
    "float8": ("0.3333333333333333", "-2.2250738585072014e-308"),
    # Years past 9999 print with more digits, years before 1 AD with " BC".
    "date": ("2020-12-31", "10000-01-01", "4714-11-24 BC"),
    # Cast to text, an inet keeps its netmask: 10.0.0.1 becomes "10.0.0.1/32".
    **dict.fromkeys(
        ("inet", "cidr"), ("255.255.255.255/32", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128")
    ),
    "macaddr": ("08:00:2b:01:02:03",),
    "macaddr8": ("08:00:2b:01:02:03:04:05",),
}


def widest_texts(t: ColumnType, *, utc: bool) -> tuple[str, ...] | None:
    """Texts of ``t``'s values, shortest first, up to its widest.

    ``()`` when the text has no length limit, ``None`` when its width is not known
    (an enum, a domain, an extension's type, an ``interval`` limited to some fields).
    """
    name = INTEGER_NAMES.get(t.name, t.name)
    if name in INTEGER_WIDEST:
        return (INTEGER_WIDEST[name],)
    if name in _FIXED:
        return _FIXED[name]
    if name in UNBOUNDED or (name in TEXT and not t.mods):
        return ()
    if name == "numeric":
        return (numeric_widest(t.mods),) if t.mods else ()
    if name in {"bit", "varbit"}:
        return ("1" * t.mods[0],) if t.mods else ()
    return _temporal(name, t.mods, utc=utc)


def numeric_widest(mods: tuple[int, ...]) -> str:
    """The widest text of ``numeric(p, s)``: a minus sign, every digit, the point."""
    precision, scale = mods[0], scale_of(mods)
    if scale <= 0:
        return "-" + "9" * precision + "0" * -scale
    if scale >= precision:
        return "-0." + "0" * (scale - precision) + "9" * precision
    return "-" + "9" * (precision - scale) + "." + "9" * scale


def scale_of(mods: tuple[int, ...]) -> int:
    return mods[1] if len(mods) > 1 else 0


def precision_of(name: str, mods: tuple[int, ...]) -> int | None:
    """Digits of fractional seconds kept by a temporal type (``None``: not temporal)."""
    if name == "interval":  # (range,) or (range, precision)
        return mods[1] if len(mods) > 1 else MAX_PRECISION
    if name in {"timestamp", "timestamptz", "time", "timetz"}:
        return min(mods[0], MAX_PRECISION) if mods else MAX_PRECISION
    return None


def _temporal(name: str, mods: tuple[int, ...], *, utc: bool) -> tuple[str, ...] | None:
    precision = precision_of(name, mods)
    if precision is None:
        return None
    fraction = ("." + "9" * precision) if precision else ""
    clock = f"23:59:59{fraction}"
    if name == "time":
        return (clock,)
    if name == "timetz":
        return (f"{clock}+05:30", f"{clock}-15:59:59")
    if name == "timestamp":
        return (f"2020-12-31 {clock}", f"294276-12-31 {clock}", f"4714-11-24 {clock} BC")
    if name == "timestamptz":
        texts = (f"2020-12-31 {clock}+00", f"294276-12-31 {clock}+00", f"4714-11-24 {clock}+00 BC")
        # Another session time zone prints the offset of its own time, and the local
        # mean time of before the 1900s has seconds in it (Europe/Amsterdam: +00:19:32).
        return texts if utc else (*texts, f"4714-11-24 {clock}+00:19:32 BC")
    if mods and mods[0] != INTERVAL_FULL_RANGE:
        return None
    fraction = ("." + "775807"[:precision]) if precision else ""
    return (f"-178956970 years -8 mons -2147483648 days -2562047788:00:54{fraction}",)
