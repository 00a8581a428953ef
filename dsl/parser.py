"""Playbook text -> syntax tree (dsl.nodes).

One LALR parser, built once per process. Lark's types stay in this module:
its errors become Diagnostics with line, column, caret, what was expected and
a "did you mean". After a syntax error the parser skips the broken statement
and goes on at the next top-level statement, so one run reports every broken
statement, once each, and the checker still sees the others.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import lark
from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import nodes as n
from .diagnostics import Diagnostic, PlaybookError, did_you_mean

MAX_BYTES = 1_000_000          # a playbook larger than this is refused
MAX_DEPTH = 64                 # nesting of parentheses / not / and / or
MAX_SYNTAX_ERRORS = 50
RECOVERY_BUDGET = 4_000_000    # characters re-parsed while recovering from syntax errors

# What people call the tokens the parser may expect.
_TOKEN_WORDS = {
    "STRING": 'a "quoted string"', "NUMBER": "a number", "MONEY": "an amount like $4.50",
    "PERCENT": "a percentage like 40%", "DATE": "a date like 2026-11-27",
    "TIME": "a time like 15:00", "NAME": "a name", "LPAR": '"("', "RPAR": '")"',
    "EQ": '"="', "NE": '"!="', "LT": '"<"', "LE": '"<="', "GT": '">"', "GE": '">="',
    "IN_TRANSIT": '"in-transit"', "CURRENCY_CODE": "a currency code like USD",
    "KIND_3PL": '"3pl"', "COMMA": '","', "DOT": '"."', "$END": "the end of the file",
}

# Common mistakes near the top of a file, labelled with Lark's match_examples.
_MISTAKES = {
    "names of playbooks, rules and groups are written in double quotes": [
        'playbook x', 'playbook "x" rule r', 'playbook "x" group g', 'playbook "x" timezone UTC',
    ],
}
# Facts without a field that are never a bare word, so a value may name them.
_FACT_WORDS = {"distance", "cost"}
_SETTING_WORDS = {"PLAYBOOK", "TIMEZONE", "CURRENCY", "A"}
_ACTION_WORDS = {"EXCLUDE", "AVOID", "PREFER", "PENALIZE", "KEEP", "ROUTE", "OPTIMIZE", "SHIP",
                 "MAX", "SPLIT", "USE", "SURCHARGE", "ALLOW", "HOLD", "TAG", "SET"}
_VALUE_WORDS = {"STRING", "NUMBER", "MONEY", "PERCENT", "DATE", "TIME", "NAME"}


@functools.cache
def _lark() -> lark.Lark:
    grammar = resources.files("grammar").joinpath("playbook.lark").read_text(encoding="utf-8")
    # When `interegular` is installed Lark checks every pair of terminals for
    # overlaps while building (about a second). That is a grammar-development
    # check: tests/test_parser.py runs it in strict mode. Skip it at run time.
    checks, lark.lexer.has_interegular = lark.lexer.has_interegular, False
    try:
        return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                         maybe_placeholders=False)
    finally:
        lark.lexer.has_interegular = checks


@functools.cache
def _keywords() -> dict[str, str]:
    """Terminal name -> the keyword as people write it, for keyword terminals."""
    words = {}
    for term in _lark().terminals:
        pattern = term.pattern.value
        if isinstance(term.pattern, lark.lexer.PatternRE) and pattern.endswith("(?![a-z0-9_])"):
            words[term.name] = pattern.removesuffix("(?![a-z0-9_])").strip("()").split("|")[0]
    return words


def parse(text: str | bytes, file: str = "<playbook>") -> n.Playbook:
    """Parse playbook text. Raises PlaybookError with every syntax problem."""
    playbook, diagnostics = parse_partial(text, file)
    if diagnostics:
        raise PlaybookError(diagnostics)
    return playbook


def parse_partial(text: str | bytes, file: str = "<playbook>") -> tuple[n.Playbook | None, list[Diagnostic]]:
    """Parse what can be parsed: the statements that are well-formed, and a
    diagnostic for each one that is not (so the checker can still look at
    the rest). The playbook is None when nothing could be read."""
    text, problems = _decode(text, file)
    if problems:
        return None, problems
    blanked = text
    diagnostics: list[Diagnostic] = []
    skipped: list[tuple[int, int]] = []
    first_rule = _first_rule(text)
    while True:
        try:
            tree = _lark().parse(blanked)
            break
        except UnexpectedInput as error:
            diagnostics.append(_describe(error, text, file))
            region = _broken_statement(blanked, _offset(blanked, error), _between_statements(error),
                                       first_rule)
            budget = max(1, min(MAX_SYNTAX_ERRORS, RECOVERY_BUDGET // max(1, len(text))))
            if len(diagnostics) >= budget or region is None:
                return None, diagnostics
            begin, end = region
            skipped.append(region)
            blanked = blanked[:begin] + re.sub(r"[^\n]", " ", blanked[begin:end]) + blanked[end:]
    depth_problem = _too_deep(tree, text, file)
    if depth_problem:
        return None, diagnostics + [depth_problem]
    unreadable = tuple(found for begin, end in sorted(skipped) for found in _unreadable(text, file, begin, end))
    return _Builder(file, text).playbook(tree, unreadable), diagnostics


# ---- input checks -------------------------------------------------------------

def _decode(text: str | bytes, file: str) -> tuple[str, list[Diagnostic]]:
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
    if size > MAX_BYTES:
        return "", [Diagnostic(file, 1, 1, "error",
                               f"playbook is {size:,} bytes; the limit is {MAX_BYTES:,} bytes")]
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            line = text[: error.start].count(b"\n") + 1
            column = error.start - (text.rfind(b"\n", 0, error.start) + 1) + 1
            return "", [Diagnostic(file, line, column, "error",
                                   f"not UTF-8 text (byte 0x{text[error.start]:02x}); "
                                   "save the playbook as UTF-8")]
    text = text.removeprefix("\ufeff")
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        return "", [Diagnostic(file, line, column, "error",
                               "binary data (a NUL byte) in the playbook; it must be plain text")]
    return text, []


def _too_deep(tree: Tree, text: str, file: str) -> Diagnostic | None:
    """Measure nesting without recursion, so hostile input cannot blow the stack."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data in ("paren", "negation", "or_cond", "and_cond"):
            depth += 1
            if depth > MAX_DEPTH:
                meta = node.meta
                return Diagnostic(file, meta.line, meta.column, "error",
                                  f"conditions nest deeper than {MAX_DEPTH} levels; "
                                  "split the rule or use a group", None,
                                  _source_line(text, meta.line))
        stack.extend((child, depth) for child in node.children if isinstance(child, Tree))
    return None


# ---- syntax errors ----------------------------------------------------------

def _offset(text: str, error: UnexpectedInput) -> int:
    if isinstance(error, UnexpectedEOF) or getattr(error, "pos_in_stream", None) is None:
        return len(text)
    if isinstance(error, UnexpectedToken) and error.token.type == "$END":
        # The end token borrows the position of the last token read; the
        # statement to skip is the last one, even when that token is its
        # first word (a file ending in `rule`).
        return len(text)
    return error.pos_in_stream


def _describe(error: UnexpectedInput, text: str, file: str) -> Diagnostic:
    if isinstance(error, UnexpectedEOF):
        lines = text.rstrip().split("\n")
        line, column = len(lines), len(lines[-1]) + 1 if lines else 1
        expected = _expected_words(error.expected)
        return Diagnostic(file, line, column, "error",
                          f"the playbook ends too early; expected {expected}", None,
                          _source_line(text, line))
    line, column = error.line, error.column
    source_line = _source_line(text, line)
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream] if error.pos_in_stream < len(text) else ""
        if char == '"':
            message = 'unterminated string: a string must end with " on the same line'
        elif char == "$":
            message = "money is written as $ followed by a number, e.g. $4.50"
        else:
            word = re.match(r"[^\s()\",=<>!]+", text[error.pos_in_stream:])
            shown = visible(word.group(0) if word else char)
            message = f'unexpected "{shown}"'
            possible = _possible(error, error.allowed or set())
            expected = _expected_words(possible)
            if expected:
                message += f"; expected {expected}"
            message += _keyword_hint(shown, possible)
        return Diagnostic(file, line, column, "error", message, None, source_line)
    token: Token = error.token
    label = _label(error, text)
    possible = _possible(error, error.expected)
    expected = _expected_words(possible)
    if token.type == "$END":
        # Lark places the end token at the start of the last token read; the
        # problem is what comes after it, so point just past that token.
        line = token.end_line or line
        column = token.end_column or column
        message = "the playbook ends too early"
        if label:
            message += f": {label}"
        elif expected:
            message += f"; expected {expected}"
        return Diagnostic(file, line, column, "error", message, None, _source_line(text, line))
    message = f'unexpected "{token}"'
    if label:
        message += f": {label}"
    elif expected:
        message += f"; expected {expected}"
    message += _keyword_hint(str(token), possible)
    end = column + len(str(token))
    return Diagnostic(file, line, column, "error", message, end, source_line)


def _possible(error: UnexpectedInput, lookahead: set[str]) -> set[str]:
    """What the parser can really take where it stopped. Lark's `expected`
    (and the lexer's `allowed`) is the LALR state's lookahead set, which
    merges the lookaheads of every place the same item occurs: after `$5` in
    `between $5 $10` it offers the actions and the settings, as after `split
    penalty $5`. Trying each terminal on a copy of the parser gives only what
    fits (less the end of the file, which is no help in the middle of one)."""
    try:
        parser = getattr(error, "interactive_parser", None)
        accepts = set(parser.accepts()) if parser is not None else set()
    except Exception:  # noqa: BLE001 - a nicety: the lookahead set is still right, only wider
        accepts = set()
    return (accepts - {"$END"}) or accepts or set(lookahead)


# Units people write that the language spells differently.
_UNIT_HINTS = {
    "miles": "mi", "mile": "mi", "kilometers": "km", "kilometres": "km", "kms": "km",
    "pounds": "lb", "pound": "lb", "kgs": "kg", "kilograms": "kg", "kilos": "kg",
    "weeks": "days (2 weeks = 14 days)", "week": "days (1 week = 7 days)",
    "minutes": "hours (90 minutes = 1.5 hours)", "mins": "hours", "hrs": "hours", "hr": "hour",
    "pm": "a 24-hour time such as 15:00", "am": "a 24-hour time such as 09:00",
    "dollars": "$ before the amount, e.g. $4.50", "percent": "% after the number, e.g. 40%",
}


def _label(error: UnexpectedToken, text: str) -> str | None:
    token_type, accepts = error.token.type, set(error.accepts or error.expected)
    word = str(error.token).lower()
    if word in _UNIT_HINTS and token_type == "NAME":
        return (f'"{error.token}" is not a unit Steve knows; write {_UNIT_HINTS[word]} '
                "(units: km, mi, kg, lb, days, hours, %, $)")
    if token_type in _SETTING_WORDS and "RULE" in accepts:
        return "the header and settings come before the first rule"
    if token_type in _ACTION_WORDS and "THEN" in accepts and token_type not in accepts:
        return "an action needs `then` before it (when ... then ...)"
    # A condition is cut short: a value or a fact is missing (not merely a
    # quoted name, which is all a header, rule or group name needs).
    if token_type in ("THEN", "AND", "OR", "WHEN", "PRIORITY", "RULE", "GROUP", "$END") \
            and accepts & (_VALUE_WORDS - {"STRING"}) \
            and "IS" not in accepts:
        return "a condition is `fact.field operator value`, e.g. order.total > $100"
    try:
        return error.match_examples(_lark().parse, _MISTAKES, use_accepts=True)
    except Exception:  # noqa: BLE001 - labelling is a nicety; never let it fail a check
        return None


def _keyword_hint(word: str, expected: set[str]) -> str:
    if not word.isidentifier():
        return ""
    keywords = _keywords()
    choices = [keywords[t] for t in expected if t in keywords and keywords[t].isalpha()]
    if word.lower() in (c.lower() for c in choices) or word.lower() in (
            k.lower() for k in keywords.values()):
        return ""
    return did_you_mean(word, choices)


def _expected_words(expected: set[str]) -> str:
    keywords = _keywords()
    words = []
    for name in sorted(expected):
        if name in keywords and name not in _TOKEN_WORDS:
            words.append(f'"{keywords[name]}"')
        elif name in _TOKEN_WORDS:
            words.append(_TOKEN_WORDS[name])
    words = sorted(set(words))
    if not words:
        return ""
    if len(words) > 8:
        return "one of " + ", ".join(words[:8]) + ", …"
    if len(words) == 1:
        return words[0]
    return "one of " + ", ".join(words)


# ---- recovery -------------------------------------------------------------------
#
# After a syntax error the broken statement is blanked out (line breaks kept,
# so every later position stays where it was) and the text is parsed again,
# until it parses. Statements begin at `rule`, at a `group` definition, and at
# the header and the settings written at the start of a line. `optimize`,
# `split penalty` and `max shipments` are also actions: after the first rule
# they begin nothing, so a broken rule is skipped up to the next `rule` or
# `group` (or a setting that can never be an action) and never split in two.

_WORDS = re.compile(r'"[^"\n]*"?|#[^\n]*|[A-Za-z_][A-Za-z0-9_]*|\S')
_SETTINGS_ONLY = {"playbook", "timezone", "currency"}          # never an action
_SETTINGS_OR_ACTIONS = {"optimize", "optimise", "split", "max"}
# After these a name or a value may follow, so a setting word there is not a
# new statement but what the statement before it goes on with.
_WANTS_A_NAME = {"when", "where", "and", "or", "not", "(", "set", "is", "of", "in", "between", "after",
                 "before", "to", "=", "<", ">", ",", "."}
_DAY_SAVED = re.compile(r"a\s+day\s+saved(?![A-Za-z0-9_])", re.IGNORECASE)


def _first_rule(text: str) -> int:
    """Where the first rule begins (`rule` is reserved: it always begins one)."""
    return next((s for s in _statement_starts(text, len(text)) if text[s:s + 4].lower() == "rule"),
                len(text))


def _statement_starts(text: str, first_rule: int) -> list[int]:
    """Offsets where a top-level statement begins: `rule`, a `group`
    definition (not `in group` / `exclude group`), and the header and the
    settings at the start of a line (the words that are also actions only
    before `first_rule`), unless the word before them wants a name or a value
    (`when node.kind is` at the end of a line takes `timezone` on the next
    as its value). Strings and comments are skipped, so the words inside
    them never count."""
    starts, previous = [], ""
    for match in _WORDS.finditer(text):
        word = match.group(0)
        if word[0] == "#":
            continue
        lowered, at = word.lower(), match.start()
        if word[0] == '"':
            pass
        elif lowered == "rule" or (lowered == "group" and previous not in ("in", "exclude", "avoid")):
            starts.append(at)
        elif (lowered in _SETTINGS_ONLY or (lowered in _SETTINGS_OR_ACTIONS and at < first_rule)
              or (lowered == "a" and _DAY_SAVED.match(text, at))) \
                and previous not in _WANTS_A_NAME and not text[text.rfind("\n", 0, at) + 1: at].strip():
            starts.append(at)
        previous = lowered
    return starts


def _between_statements(error: UnexpectedInput) -> bool:
    """Whether the parser had just finished a statement: a new `rule` could
    have begun where it stopped."""
    if isinstance(error, UnexpectedCharacters):
        expected = error.allowed or set()
    else:
        expected = getattr(error, "accepts", None) or getattr(error, "expected", None) or set()
    return "RULE" in expected


def _broken_statement(text: str, offset: int, between: bool, first_rule: int) -> tuple[int, int] | None:
    """The region to blank out for a syntax error at `offset`: from the start
    of the broken statement to the next statement, or None when there is
    nothing left to skip."""
    starts = _statement_starts(text, first_rule)
    before = [s for s in starts if s <= offset]
    begin = before[-1] if before else 0
    end = next((s for s in starts if s > offset), len(text))
    if begin == offset and not between:
        # The bad word begins a statement, so the statement before it is the
        # unfinished one (`split penalty` with no amount, then `max shipments 3`).
        begin, end = (before[-2] if len(before) > 1 else 0), offset
    if not text[begin:end].strip():
        return None
    return begin, end


def _unreadable(text: str, file: str, begin: int, end: int) -> list[n.Unreadable]:
    """What a skipped region was meant to be, so the checker does not report
    the consequences of one syntax error (a group that was never defined, a
    playbook without a name) as more errors; and any group in it whose
    keyword `group` is missing (`"stores" is nodes ...` at a line's start)."""
    chunk = text[begin:end]
    first = re.match(r'\s*([A-Za-z_]+)(?:\s+"([^"\n]*)")?', chunk)
    word = first.group(1).lower() if first else ""
    kind = {"playbook": "header", "rule": "rule", "group": "group"}.get(
        word, "setting" if word in _SETTINGS_ONLY | _SETTINGS_OR_ACTIONS | {"a"} else "text")
    name = first.group(2) if first and kind in ("header", "rule", "group") else None
    code = re.sub(r'"[^"\n]*"?|#[^\n]*', " ", chunk)
    fields = tuple(sorted({(m.group(1).lower(), m.group(2).lower()) for m in re.finditer(
        r"(?<![A-Za-z0-9_])set\s+(order|customer)\s*\.\s*([A-Za-z_][A-Za-z0-9_.]*)", code, re.IGNORECASE)}))
    lead = len(chunk) - len(chunk.lstrip())
    start, stop = begin + lead, begin + len(chunk.rstrip())
    line, column = _position(text, start)
    end_line, end_column = _position(text, stop)
    span = n.Span(file, line, column, end_line, end_column)
    groups = [match.group(1) for match in re.finditer(r'(?m)^[ \t]*"([^"\n]*)"[ \t]+is[ \t]+nodes?\b', chunk)]
    return [n.Unreadable(kind, name, fields, span)] + [n.Unreadable("group", group, (), span) for group in groups]


def _position(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def visible(text: str) -> str:
    """Text for a message: characters that do not print are shown as \\uXXXX."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _source_line(text: str, line: int) -> str:
    lines = text.split("\n")
    return lines[line - 1].rstrip("\r") if 0 < line <= len(lines) else ""


# ---- tree -> nodes -------------------------------------------------------------

_UNIT_KINDS = {
    "km": ("distance", 1.0), "mi": ("distance", 1.609344),
    "kg": ("weight", 1.0), "lb": ("weight", 0.45359237), "lbs": ("weight", 0.45359237),
    "day": ("duration", 1.0), "days": ("duration", 1.0),
    "hour": ("duration", 1 / 24), "hours": ("duration", 1 / 24),
    "unit": ("number", 1.0), "units": ("number", 1.0),
}


class _Builder:
    def __init__(self, file: str, text: str):
        self.file = file
        self.comments = tuple(
            (text.count("\n", 0, m.start()) + 1, m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1,
             m.group(0))
            for m in re.finditer(r'#[^\n]*|"[^"\n]*"', text) if m.group(0).startswith("#"))

    def span(self, item) -> n.Span:
        if isinstance(item, Token):
            return n.Span(self.file, item.line, item.column, item.end_line, item.end_column)
        meta = item.meta
        return n.Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def playbook(self, tree: Tree, unreadable: tuple[n.Unreadable, ...] = ()) -> n.Playbook:
        statements = []
        for child in tree.children:
            kind = child.data
            if kind == "header":
                statements.append(n.Header(_unquote(child.children[1]), self.span(child)))
            elif kind.startswith("set_"):
                statements.append(self.setting(child))
            elif kind.startswith("group_"):
                statements.append(self.group(child))
            elif kind == "rule":
                statements.append(self.rule(child))
        return n.Playbook(self.file, tuple(statements), self.comments, unreadable)

    def setting(self, tree: Tree) -> n.Setting:
        name = tree.data.removeprefix("set_")
        last = tree.children[-1]
        if name in ("timezone", "currency"):
            value = n.Literal("string", _unquote(last), str(last), span=self.span(last))
        elif name == "optimize":
            value = self.objective(last)
        else:
            value = self.value(last)
        return n.Setting(name, value, self.span(tree))

    def objective(self, tree: Tree) -> n.Literal:
        token = tree.children[0]
        return n.Literal("word", str(token).lower(), str(token), span=self.span(token))

    def group(self, tree: Tree) -> n.Group:
        name_token = tree.children[1]
        last = tree.children[-1]
        if tree.data == "group_nodes":
            members = tuple(n.Literal("string", _unquote(t), str(t), span=self.span(t))
                            for t in last.children if isinstance(t, Token) and t.type == "STRING")
            return n.Group(_unquote(name_token), members, None, self.span(tree), self.span(name_token))
        return n.Group(_unquote(name_token), None, self.condition(last), self.span(tree),
                       self.span(name_token))

    def rule(self, tree: Tree) -> n.Rule:
        name_token = tree.children[1]
        priority, when, actions, clauses, clause_spans = None, None, [], [], []
        for clause in tree.children[2:]:
            clauses.append(clause.data)
            clause_spans.append(self.span(clause))
            if clause.data == "priority":
                # int when whole; a fraction is kept so the checker can refuse it
                priority = _number(clause.children[1].children[0], self.span(clause)).value
            elif clause.data == "when":
                when = self.condition(clause.children[1])
            elif clause.data == "then":
                actions.extend(self.action(a) for a in clause.children[1].children
                               if isinstance(a, Tree))
        return n.Rule(_unquote(name_token), priority, when, tuple(actions), tuple(clauses),
                      self.span(tree), self.span(name_token), tuple(clause_spans))

    # conditions
    def condition(self, tree: Tree) -> n.Condition:
        kind = tree.data
        subtrees = [c for c in tree.children if isinstance(c, Tree)]
        if kind == "or_cond":
            return n.Any(tuple(self.condition(c) for c in subtrees), self.span(tree))
        if kind == "and_cond":
            return n.All(tuple(self.condition(c) for c in subtrees), self.span(tree))
        if kind == "negation":
            return n.Not(self.condition(subtrees[0]), self.span(tree))
        if kind == "paren":
            return n.Paren(self.condition(subtrees[0]), self.span(tree))
        return self.test(tree)

    def test(self, tree: Tree) -> n.Test:
        path = self.path(tree.children[0])
        rest = tree.children[1:]
        op_tokens = [t for t in rest if isinstance(t, Token) and t.type != "STRING"]
        kind = tree.data.removeprefix("test_")
        values: tuple = ()
        if kind in ("in", "not_in"):
            values = tuple(self.value(v) for v in rest[-1].children if not _is_comma(v))
            op = "in" if kind == "in" else "not in"
        elif kind in ("in_group", "not_in_group", "has_tag", "has_no_tag"):
            token = rest[-1]
            values = (n.Literal("string", _unquote(token), str(token), span=self.span(token)),)
            op = kind.replace("_", " ")
        elif kind == "compare":
            op = str(rest[0].children[0])
            values = (self.value(rest[1]),)
        elif kind == "between":
            op = "between"
            values = (self.value(rest[1]), self.value(rest[3]))
        else:
            op = {"is": "is", "is_not": "is not", "after": "after", "before": "before"}[kind]
            values = (self.value(rest[-1]),)
        first = op_tokens[0] if op_tokens else None
        op_span = self.span(first) if first is not None else self.span(tree)
        if kind == "compare":
            op_span = self.span(rest[0])
        return n.Test(path, op, values, self.span(tree), op_span)

    def path(self, tree: Tree) -> n.Path:
        return n.Path(tuple(str(t) for t in tree.children if isinstance(t, Token)), self.span(tree))

    def value(self, item) -> n.Value:
        span = self.span(item)
        if isinstance(item, Token):
            return self.token_value(item)
        kind = item.data
        children = item.children
        if kind == "string":
            token = children[0]
            return n.Literal("string", _unquote(token), str(token), span=span)
        if kind == "number":
            return _number(children[0], span)
        if kind == "money":
            amount = str(children[0]).replace("$", "")
            currency = str(children[1]).upper() if len(children) > 1 else "$"
            text = " ".join(str(c) for c in children)
            return n.Literal("money", float(amount), text, currency, span)
        if kind == "percent":
            text = str(children[0])
            return n.Literal("percent", float(text[:-1]) / 100, text, span=span)
        if kind == "quantity":
            number = float(children[0].children[0])
            unit = str(children[1].children[0]).lower()
            unit_kind, factor = _UNIT_KINDS[unit]
            text = f"{children[0].children[0]} {children[1].children[0]}"
            return n.Literal(unit_kind, number * factor, text, unit, span)
        if kind == "date":
            return n.Literal("date", str(children[0]), str(children[0]), span=span)
        if kind == "time":
            hours, minutes = str(children[0]).split(":")
            return n.Literal("time", int(hours) * 60 + int(minutes), str(children[0]), span=span)
        if kind == "word":
            word = str(children[0])
            if word.lower() in _FACT_WORDS:
                # `node.handling < cost` compares two facts, as `cost > node.handling`
                # does (`transit` stays a word: it is also a node kind)
                return n.Path((word,), span)
            return n.Literal("word", word.lower(), word, span=span)
        if kind == "ref":
            return n.Path(tuple(str(t) for t in children if isinstance(t, Token)), span)
        raise AssertionError(f"unknown value {kind}")

    def token_value(self, token: Token) -> n.Literal:
        span = self.span(token)
        if token.type == "STRING":
            return n.Literal("string", _unquote(token), str(token), span=span)
        return _number(token, span)

    # actions
    def action(self, tree: Tree) -> n.Action:
        kind = tree.data
        children = tree.children
        strings = [c for c in children if isinstance(c, Token) and c.type == "STRING"]
        reason_tree = next((c for c in children if isinstance(c, Tree) and c.data == "because"), None)
        reason = _unquote(reason_tree.children[1]) if reason_tree else None
        amount_tree = next((c for c in children if isinstance(c, Tree)
                            and c.data in ("money", "number")), None)
        amount = self.value(amount_tree) if amount_tree is not None else None
        target, target_span = None, self.span(tree)
        if strings:
            target, target_span = _unquote(strings[0]), self.span(strings[0])
        service = _unquote(strings[1]) if kind == "use_carrier" and len(strings) > 1 else None
        field_path = value = None
        if kind == "optimize":
            objective = children[-1]
            target, target_span = str(objective.children[0]).lower(), self.span(objective)
        elif kind == "set_field":
            field_path = self.path(children[1])
            value = self.value(children[3])
        return n.Action(kind, target, amount, reason, service, field_path, value,
                        self.span(tree), target_span)


def _number(token: Token, span: n.Span) -> n.Literal:
    text = str(token)
    value = float(text)
    return n.Literal("number", int(value) if value.is_integer() else value, text, span=span)


def _unquote(token) -> str:
    return str(token)[1:-1]


def _is_comma(item) -> bool:
    return isinstance(item, Token) and str(item) == ","
