"""squawk's rule fixtures: the SQL of each test and the verdict the test asserts.

squawk keeps its rules in ``crates/squawk_linter/src/rules/<rule>.rs``; each file ends in a
``mod test`` whose ``#[test]`` functions bind SQL to a variable (``let sql = r#"…"#;``) and
assert one rule's verdict on it with a helper of ``test_utils.rs``:

- ``lint_errors(sql, Rule::X)`` / ``lint_errors_with(sql, settings, Rule::X)``: rule X
  reports something;
- ``lint_ok(sql, Rule::X)`` / ``lint_ok_with(sql, settings, Rule::X)``: rule X reports
  nothing.

Only rule X runs in such a test, so the assertion says nothing about the other rules. The
``settings`` of the ``_with`` forms carry the PostgreSQL version the SQL is judged for and
whether the file is assumed to run inside a transaction. Tests of the autofix
(``fix_sql``) and tests that go through a local helper are not read: they assert what the
fix writes, not a verdict on a fixture.

The test code is read with a small tokenizer of Rust's literals and comments (raw strings
hold braces and quotes), not executed.
"""

from __future__ import annotations

import dataclasses
import re

from agreement.source import CorpusError, GitTree

RULES_DIR = "crates/squawk_linter/src/rules"
LIB = "crates/squawk_linter/src/lib.rs"
DEFAULT_PG_VERSION = 15  # squawk_linter's ``impl Default for Version``
CALLS = {"lint_ok": False, "lint_errors": True, "lint_ok_with": False, "lint_errors_with": True}


@dataclasses.dataclass(frozen=True)
class Fixture:
    """One assertion of one squawk test."""

    #: ``rule-name/test_function`` (``#2``… when a test asserts more than once).
    key: str
    rule: str
    test: str
    sql: str
    #: The test asserts that the rule reports something.
    expects_error: bool
    pg_version: int
    assume_in_transaction: bool
    #: Where the assertion is: ``path:line``.
    where: str


@dataclasses.dataclass(frozen=True)
class Token:
    kind: str  # "ident", "str", "punct", "num"
    text: str
    line: int


def tokenize(source: str) -> list[Token]:  # noqa: PLR0915 - one branch per token kind
    """Identifiers, numbers, decoded string literals and punctuation; comments dropped."""
    tokens: list[Token] = []
    i, line, n = 0, 1, len(source)
    while i < n:
        ch = source[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += source.count("\n", i, end)
            i = end
        elif (raw := re.match(r'b?r(#*)"', source[i:])) is not None:
            hashes = raw[1]
            start = i + raw.end()
            end = source.find('"' + hashes, start)
            if end < 0:
                raise CorpusError(f"an unterminated raw string at line {line}")
            tokens.append(Token("str", source[start:end], line))
            line += source.count("\n", i, end)
            i = end + 1 + len(hashes)
        elif ch == '"' or source.startswith('b"', i):
            start = i + (2 if ch == "b" else 1)
            text, end = _plain_string(source, start, line)
            tokens.append(Token("str", text, line))
            line += source.count("\n", i, end)
            i = end
        elif ch == "'" and (lifetime := re.match(r"'[A-Za-z_]\w*(?!')", source[i:])):
            i += lifetime.end()  # a lifetime such as 'a, not a char literal
        elif ch == "'":
            char = re.match(r"'(\\.[^']*|[^\\'])'", source[i:])
            if char is None:
                raise CorpusError(f"an unreadable character literal at line {line}")
            tokens.append(Token("str", char[0][1:-1], line))
            i += char.end()
        elif ch.isalpha() or ch == "_":
            word = re.match(r"\w+", source[i:])
            assert word is not None
            tokens.append(Token("ident", word[0], line))
            i += word.end()
        elif ch.isdigit():
            number = re.match(r"[0-9][0-9_a-zA-Z.]*", source[i:])
            assert number is not None
            tokens.append(Token("num", number[0], line))
            i += number.end()
        else:
            tokens.append(Token("punct", ch, line))
            i += 1
    return tokens


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'"}


def _plain_string(source: str, start: int, line: int) -> tuple[str, int]:
    """The decoded text of a ``"…"`` literal starting after its quote, and where it ends."""
    out: list[str] = []
    i = start
    while i < len(source):
        ch = source[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = source[i + 1]
        if nxt == "\n":  # a line continuation skips the newline and the next indentation
            i += 2
            while i < len(source) and source[i] in " \t\r\n":
                i += 1
        elif nxt == "u":
            code = re.match(r"u\{([0-9a-fA-F_]+)\}", source[i + 1 :])
            if code is None:
                raise CorpusError(f"an unreadable \\u escape at line {line}")
            out.append(chr(int(code[1].replace("_", ""), 16)))
            i += 1 + code.end()
        elif nxt == "x":
            out.append(chr(int(source[i + 2 : i + 4], 16)))
            i += 4
        elif nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            raise CorpusError(f"an unknown escape \\{nxt} at line {line}")
    raise CorpusError(f"an unterminated string at line {line}")


def _matching(tokens: list[Token], start: int, open_: str, close: str) -> int:
    """The index of the token closing the bracket opened at ``start``."""
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.kind == "punct" and token.text == open_:
            depth += 1
        elif token.kind == "punct" and token.text == close:
            depth -= 1
            if depth == 0:
                return index
    raise CorpusError(f"no closing {close!r} for the one at line {tokens[start].line}")


def functions(tokens: list[Token]) -> list[tuple[str, bool, list[Token]]]:
    """``(name, is a #[test], body tokens)`` of every ``fn name(…) { … }``."""
    found = []
    index = 0
    while index < len(tokens) - 2:
        if not (tokens[index].text == "fn" and tokens[index + 1].kind == "ident"):
            index += 1
            continue
        name = tokens[index + 1].text
        is_test = [t.text for t in tokens[max(0, index - 4) : index]] == ["#", "[", "test", "]"]
        brace = index + 2
        while brace < len(tokens) and tokens[brace].text not in ("{", ";"):
            brace += 1
        if brace == len(tokens) or tokens[brace].text == ";":
            index = brace
            continue
        end = _matching(tokens, brace, "{", "}")
        found.append((name, is_test, tokens[brace + 1 : end]))
        index = brace + 1  # a nested fn (a test inside ``mod test``) is found too
    return found


def _split_args(tokens: list[Token]) -> list[list[Token]]:
    """The arguments of a call, given the tokens between its parentheses."""
    args: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "punct" and token.text in "([{":
            depth += 1
        elif token.kind == "punct" and token.text in ")]}":
            depth -= 1
        if depth == 0 and token.kind == "punct" and token.text == ",":
            args.append([])
        else:
            args[-1].append(token)
    return [a for a in args if a]


def _settings(tokens: list[Token]) -> tuple[int, bool]:
    """PostgreSQL major version and ``assume_in_transaction`` of a ``LinterSettings {…}``."""
    version, in_transaction = DEFAULT_PG_VERSION, False
    texts = [t.text for t in tokens]
    for index, token in enumerate(tokens):
        if token.text == "pg_version" and texts[index + 1] == ":":
            literal = tokens[index + 2]
            if literal.kind != "str":
                raise CorpusError(f"an unreadable pg_version at line {token.line}")
            version = int(literal.text.split(".")[0])
        elif token.text == "assume_in_transaction" and texts[index + 1] == ":":
            in_transaction = texts[index + 2] == "true"
    return version, in_transaction


def rule_names(lib_source: str) -> dict[str, str]:
    """``Rule`` variant → the rule's name, from ``impl fmt::Display for Rule``."""
    tokens = tokenize(lib_source)
    names: dict[str, str] = {}
    for index in range(len(tokens) - 5):
        window = tokens[index : index + 6]
        if (
            window[0].text == "Rule"
            and window[1].text == ":"
            and window[2].text == ":"
            and window[3].kind == "ident"
            and window[4].text == "="
            and window[5].text == ">"
            and index + 6 < len(tokens)
        ):
            nxt = tokens[index + 6]
            if nxt.text == "{":
                nxt = tokens[index + 7]
            if nxt.kind == "str" and re.fullmatch(r"[a-z0-9-]+", nxt.text):
                names[window[3].text] = nxt.text
    return names


@dataclasses.dataclass(frozen=True)
class _Helper:
    """A function of a test module that asserts one rule's verdict on its argument."""

    expects_error: bool
    variant: str
    #: Fixed settings of the helper; ``None`` when it passes its caller's through.
    settings: tuple[int, bool] | None


def _calls(body: list[Token]) -> list[tuple[Token, list[list[Token]]]]:
    """Every ``name(args)`` call in ``body``, outermost first."""
    found = []
    for index in range(len(body) - 1):
        token = body[index]
        if token.kind == "ident" and body[index + 1].text == "(":
            close = _matching(body, index + 1, "(", ")")
            found.append((token, _split_args(body[index + 2 : close])))
    return found


def _rule_variant(arg: list[Token]) -> str | None:
    texts = [t.text for t in arg]
    if len(texts) == 4 and texts[:3] == ["Rule", ":", ":"]:
        return texts[3]
    return None


def _helpers(functions: list[tuple[str, bool, list[Token]]]) -> dict[str, _Helper]:
    """Local helpers such as ``fn lint_ok(sql: &str) { lint_ok(sql, Rule::X) }``."""
    helpers: dict[str, _Helper] = {}
    for name, is_test, body in functions:
        if is_test:
            continue
        for call, args in _calls(body):
            if call.text not in CALLS or not args or _rule_variant(args[-1]) is None:
                continue
            settings = None
            if call.text.endswith("_with") and args[1][:1] and args[1][0].text == "LinterSettings":
                settings = _settings(args[1])
            variant = _rule_variant(args[-1])
            assert variant is not None
            helpers[name] = _Helper(CALLS[call.text], variant, settings)
            break
    return helpers


def fixtures_of(path: str, source: str, names: dict[str, str]) -> list[Fixture]:
    """Every ``lint_ok``/``lint_errors`` assertion in the tests of one rule file."""
    out: list[Fixture] = []
    found = functions(tokenize(source))
    helpers = _helpers(found)
    for test, is_test, body in found:
        if not is_test:
            continue
        bindings: dict[str, str] = {}
        for index in range(len(body) - 3):
            texts = [t.text for t in body[index : index + 4]]
            if texts[0] == "let" and texts[2] == "=" and body[index + 3].kind == "str":
                bindings[texts[1]] = body[index + 3].text
        asserted = 0
        for call, args in _calls(body):
            fixture = _fixture(path, test, call, args, bindings, names, helpers, asserted)
            if fixture is not None:
                out.append(fixture)
                asserted += 1
    return out


def _fixture(  # noqa: PLR0917
    path: str,
    test: str,
    call: Token,
    args: list[list[Token]],
    bindings: dict[str, str],
    names: dict[str, str],
    helpers: dict[str, _Helper],
    asserted: int,
) -> Fixture | None:
    if call.text in helpers:
        helper = helpers[call.text]
        expects_error, variant = helper.expects_error, helper.variant
        settings = helper.settings
        if settings is None and len(args) > 1:
            settings = _settings(args[1])
    elif call.text in CALLS and args and (variant_ := _rule_variant(args[-1])) is not None:
        expects_error, variant = CALLS[call.text], variant_
        settings = _settings(args[1]) if call.text.endswith("_with") else None
    else:
        return None
    if not args:
        return None
    first = args[0]
    if len(first) == 1 and first[0].kind == "str":
        sql = first[0].text
    elif len(first) == 1 and first[0].text in bindings:
        sql = bindings[first[0].text]
    elif len(first) == 2 and first[0].text == "&" and first[1].text in bindings:
        sql = bindings[first[1].text]
    else:
        return None  # SQL built at run time (format!, a loop): not a fixed fixture
    if variant not in names:
        raise CorpusError(f"{path}:{call.line}: Rule::{variant} has no name in {LIB}")
    version, in_transaction = settings or (DEFAULT_PG_VERSION, False)
    if in_transaction and disables_transaction(sql):
        in_transaction = False
    rule = names[variant]
    suffix = f"#{asserted + 1}" if asserted else ""
    return Fixture(
        key=f"{rule}/{test}{suffix}",
        rule=rule,
        test=test,
        sql=sql,
        expects_error=expects_error,
        pg_version=version,
        assume_in_transaction=in_transaction,
        where=f"{path}:{call.line}",
    )


#: A comment by which a file tells squawk it does not run in a transaction, whatever the
#: settings say (squawk_linter's ``ignore.rs``).
DISABLE_ASSUME_IN_TRANSACTION = "squawk-disable-assume-in-transaction"


def disables_transaction(sql: str) -> bool:
    """The SQL carries squawk's ``squawk-disable-assume-in-transaction`` comment."""
    for comment in re.findall(r"--([^\n]*)|/\*(.*?)\*/", sql, re.DOTALL):
        body = (comment[0] or comment[1]).strip()
        if body.split("--")[0].strip() == DISABLE_ASSUME_IN_TRANSACTION:
            return True
    return False


def load(tree: GitTree) -> list[Fixture]:
    """Every fixture of every rule file at the tree's commit, in file order."""
    if not tree.exists(LIB):
        raise CorpusError(
            f"{LIB} is missing at {tree.commit}: is this a squawk repository "
            "(https://github.com/sbdchd/squawk)?"
        )
    names = rule_names(tree.read(LIB))
    fixtures: list[Fixture] = []
    for path in tree.files(RULES_DIR):
        if path.endswith(".rs") and path.rsplit("/", 1)[-1] != "mod.rs":
            fixtures += fixtures_of(path, tree.read(path), names)
    keys = [f.key for f in fixtures]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise CorpusError(f"squawk fixtures with the same key: {duplicates}")
    return fixtures
