"""Hostile input for `dsl.check` (it must return diagnostics and never raise)
and for `steve fmt` (it must format or raise PlaybookError, nothing else)."""

from __future__ import annotations

import contextlib
import inspect
import sys

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import dsl
import engine
from dsl.diagnostics import Diagnostic, render
from dsl.formatter import format_playbook

FILE = "hostile.playbook"
GOOD_RULE = 'rule "r"\n  when customer.tier is "VIP"\n  then optimize speed\n'
NO_HEADER = 'a playbook starts with its name, e.g. playbook "Acme Outfitters"'
TOO_DEEP = "conditions nest deeper than 64 levels; split the rule or use a group"

HOSTILE = {
    "empty": "",
    "only whitespace": " \t\n\r\n  \n",
    "only comments": "# one\n   # two\n#",
    "binary junk with NUL and invalid UTF-8": b'playbook "x"\n\x00\x01\xff\xfe\x80junk\x00',
    "NUL in valid UTF-8 bytes": b'playbook "x"\nrule "r"\x00 then ship complete',
    "NUL in text": 'playbook "x"\n\x00',
    "random bytes": bytes(range(256)) * 4,
    "10 MB of text": 'playbook "x"\n# ' + "x" * 10_000_000 + "\n",
    "10 MB of bytes": b"#" * 10_000_000,
    "10,000 nested parentheses":
        'playbook "x"\nrule "r" when ' + "(" * 10_000 + "a is 1" + ")" * 10_000 + " then ship complete",
    "10,000 unclosed parentheses": 'playbook "x"\nrule "r" when ' + "(" * 10_000,
    "50,000 chained not": 'playbook "x"\nrule "r" when ' + "not " * 50_000 + "a is 1 then ship complete",
    "unterminated string": 'playbook "Acme\nrule "r" then ship complete\n',
    "unterminated string at the end": 'playbook "x"\nrule "r',
    "emoji in a name": 'playbook "x"\nrule "r" when order.tier😀 is "x" then ship complete',
    "zero-width space in a name": 'playbook "x"\nrule "r" when customer\u200b.tier is "x" then ship complete',
    "RTL mark before a name": 'playbook "x"\nrule "r" when \u200fcustomer.tier is "x" then ship complete',
    "unknown Unicode in strings":
        'playbook "😀 Ünïcode \u200f\u202e"\nrule "r\u200b" when customer.tier is "VIP\u200d" '
        'then tag order "🚚\u2066x\u2069"',
    "lone rule": "rule",
    "lone rule after a header": 'playbook "x"\nrule',
    "lone group": 'playbook "x"\ngroup',
    "CRLF line endings": 'playbook "x"\r\n\r\n' + GOOD_RULE.replace("\n", "\r\n"),
    "lone CR line endings": 'playbook "x"\r' + GOOD_RULE.replace("\n", "\r"),
    "UTF-8 BOM": "\ufeffplaybook \"x\"\n" + GOOD_RULE,
    "UTF-8 BOM as bytes": ("\ufeffplaybook \"x\"\n" + GOOD_RULE).encode("utf-8"),
    "two BOMs": "\ufeff\ufeffplaybook \"x\"\n" + GOOD_RULE,
    "UTF-16 with BOM": ('playbook "x"\n' + GOOD_RULE).encode("utf-16"),
    "lone surrogate": 'playbook "\ud800"\n' + GOOD_RULE,
    "200 broken rules": 'playbook "x"\n' + 'rule oops when then\n' * 200,
    "very long line": 'playbook "x"\nrule "r" when customer.tier is "' + "v" * 500_000 + '" then ship complete',
    "keyword soup": " ".join(["rule", "when", "then", "and", "or", "not", "is", "("] * 2000),
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_check_returns_diagnostics_and_never_raises(text):
    diagnostics = dsl.check(text, FILE)
    assert isinstance(diagnostics, list)
    for d in diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.file == FILE and d.line >= 1 and d.column >= 1
        assert d.severity in ("error", "warning") and d.message.strip()
        assert len(d.message) < 1000
        d.format()
        d.to_json()
    render(diagnostics, "text")
    render(diagnostics, "json")
    render(diagnostics, "github")


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_format_formats_or_raises_playbook_error(text):
    try:
        dsl.parse(text, FILE)
    except dsl.PlaybookError:
        with pytest.raises(dsl.PlaybookError):
            format_playbook(text, FILE)
        return
    out = format_playbook(text, FILE)
    assert dsl.parse(out) == dsl.parse(text)


def messages(text) -> list[tuple[int, int, str]]:
    return [(d.line, d.column, d.message) for d in dsl.check(text, FILE)]


def test_pinned_empty_and_comment_only_files():
    assert messages("") == [(1, 1, NO_HEADER)]
    assert messages("# one\n   # two\n#") == [(1, 1, NO_HEADER)]


def test_pinned_binary_junk():
    assert messages(HOSTILE["binary junk with NUL and invalid UTF-8"]) == [
        (2, 3, "not UTF-8 text (byte 0xff); save the playbook as UTF-8")]
    assert messages(HOSTILE["NUL in valid UTF-8 bytes"]) == [
        (2, 9, "binary data (a NUL byte) in the playbook; it must be plain text")]
    assert messages(HOSTILE["UTF-16 with BOM"]) == [
        (1, 1, "not UTF-8 text (byte 0xff); save the playbook as UTF-8")]


def test_pinned_size_limit():
    assert messages(HOSTILE["10 MB of bytes"]) == [
        (1, 1, "playbook is 10,000,000 bytes; the limit is 1,000,000 bytes")]


def test_pinned_nesting_limit():
    assert messages(HOSTILE["10,000 nested parentheses"]) == [(2, 79, TOO_DEEP)]
    assert messages(HOSTILE["50,000 chained not"]) == [(2, 271, TOO_DEEP)]


def test_pinned_unterminated_string():
    assert messages(HOSTILE["unterminated string"])[0] == (
        1, 10, 'unterminated string: a string must end with " on the same line')


def test_pinned_lone_rule():
    assert messages(HOSTILE["lone rule after a header"]) == [
        (2, 5, "the playbook ends too early: names of playbooks, rules and groups are written "
               "in double quotes")]
    assert messages("rule") == [
        (1, 1, NO_HEADER), (1, 5, 'the playbook ends too early; expected a "quoted string"')]


def test_pinned_unknown_unicode():
    [(line, column, message)] = messages(HOSTILE["emoji in a name"])
    assert (line, column) == (2, 25)
    assert message.startswith('unexpected "😀"; expected one of "!="')
    # the caret points at the invisible character itself, which the message spells out,
    # and a warning says what it is
    syntax, invisible = messages(HOSTILE["zero-width space in a name"])
    assert syntax[:2] == (2, 23) and syntax[2].startswith('unexpected "\\u200b.tier"')
    assert invisible == (2, 23, "invisible character U+200B (ZERO WIDTH SPACE): text with it looks "
                                "the same but compares different; remove it")
    syntax, invisible = messages(HOSTILE["RTL mark before a name"])
    assert syntax[:2] == (2, 15) and syntax[2].startswith('unexpected "\\u200fcustomer.tier"')
    assert invisible[:2] == (2, 15) and invisible[2].startswith("invisible character U+200F")
    # strings may hold any printable text; invisible and bidirectional controls are flagged
    flagged = messages(HOSTILE["unknown Unicode in strings"])
    assert [(line, column) for line, column, _ in flagged] == [(1, 21), (1, 22), (2, 8), (2, 37), (2, 57),
                                                               (2, 59)]
    assert [m.split(":")[0] for _, _, m in flagged] == [
        "invisible character U+200F (RIGHT-TO-LEFT MARK)",
        "bidirectional control character U+202E (RIGHT-TO-LEFT OVERRIDE)",
        "invisible character U+200B (ZERO WIDTH SPACE)", "invisible character U+200D (ZERO WIDTH JOINER)",
        "bidirectional control character U+2066 (LEFT-TO-RIGHT ISOLATE)",
        "bidirectional control character U+2069 (POP DIRECTIONAL ISOLATE)"]


def test_crlf_and_bom_are_invisible():
    assert messages(HOSTILE["CRLF line endings"]) == []
    assert messages(HOSTILE["lone CR line endings"]) == []
    assert messages(HOSTILE["UTF-8 BOM"]) == []
    assert messages(HOSTILE["UTF-8 BOM as bytes"]) == []
    crlf = 'playbook "x"\r\nrule "r"\r\n  when custmer.tier is "VIP"\r\n  then optimize speed\r\n'
    [d] = dsl.check(crlf, FILE)
    assert (d.line, d.column, d.message) == (3, 8, 'unknown fact "custmer"; did you mean "customer"?')
    assert d.source_line == '  when custmer.tier is "VIP"'
    bom = '\ufeffplaybook "x"\nrule "r" when custmer.tier is "VIP" then optimize speed\n'
    for text in (bom, bom.encode("utf-8")):
        assert messages(text) == [(2, 15, 'unknown fact "custmer"; did you mean "customer"?')]


def test_syntax_errors_are_capped():
    found = dsl.check(HOSTILE["200 broken rules"], FILE)
    assert len(found) == 50
    assert found[0].message == ('unexpected "oops": names of playbooks, rules and groups are '
                                'written in double quotes')


# ---- recovery works on statements, not lines -------------------------------------------------

def test_recovery_keeps_a_header_on_the_same_line():
    assert NO_HEADER not in [m for _, _, m in messages('playbook "x" rule')]


def test_recovery_still_checks_a_rule_on_the_same_line():
    text = ('playbook "x"\nrule "a" when custmer.tier is "x" then ship complete '
            'rule "b" when then ship complete')
    assert (2, 15, 'unknown fact "custmer"; did you mean "customer"?') in messages(text)


# ---- depth is measured before any recursive pass ---------------------------------------------

def test_deep_nesting_is_refused_before_any_recursive_pass():
    """With only 40 frames of stack to spare, 50,000 chained `not`s and
    10,000 parentheses still get the nesting diagnostic: nothing walks the
    tree recursively before the iterative depth check has refused it."""
    dsl.check('playbook "warm-up"\n')                  # the parser is built outside the limit
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 40)
    try:
        nots = messages(HOSTILE["50,000 chained not"])
        parens = messages(HOSTILE["10,000 nested parentheses"])
        with pytest.raises(dsl.PlaybookError) as refused:
            dsl.compile(HOSTILE["50,000 chained not"], FILE)
    finally:
        sys.setrecursionlimit(limit)
    assert nots == [(2, 271, TOO_DEEP)]
    assert parens == [(2, 79, TOO_DEEP)]
    assert [d.message for d in refused.value.errors] == [TOO_DEEP]


# ---- fuzzing: generated, mutated and random text ---------------------------------------------
#
# Valid playbooks come from the grammar (test_formatter's from_lark strategy);
# mutations cut, repeat, truncate and splice them with fragments that break
# things; random text and bytes are the rest. Whatever comes in, `dsl.check`
# returns well-formed diagnostics, `dsl.compile` and `steve fmt` succeed or
# raise PlaybookError, and a playbook that checks clean routes an order.

from test_formatter import PLAYBOOKS                        # noqa: E402

FRAGMENTS = ['rule "x"', "rule", "when", "then", " and ", " or ", "not ", "(", ")", '"', "$", "%", "#",
             "\n", "\r", "\t", "group", "priority 10", "keep 2 units", "exclude node", "is one of", ",",
             "\x00", "\ufeff", "\u202e", "\u200b", "é", "😀", "99999999999999999999999", "-", ".",
             "between", "2026-02-30", "25:99", "$-0.001", "1e309", "is is", "node.", "order.lines",
             'set order.x to "y"', "tag order", "max shipments 0", "\\", "'", "{", "}", "[", "]"]
FUZZ = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example, HealthCheck.filter_too_much])


@st.composite
def mutated_playbooks(draw) -> str:
    text = draw(PLAYBOOKS)
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        how = draw(st.sampled_from(["delete", "insert", "repeat", "truncate", "swap", "replace"]))
        if how == "delete":
            text = text[:start] + text[end:]
        elif how == "insert":
            piece = draw(st.sampled_from(FRAGMENTS) | st.text(max_size=6))
            text = text[:start] + piece + text[start:]
        elif how == "repeat":
            text = text[:end] + text[start:end] * draw(st.integers(1, 3)) + text[end:]
        elif how == "truncate":
            text = text[:start]
        elif how == "swap":
            text = text[end:] + text[start:end] + text[:start]
        else:
            text = text[:start] + draw(st.sampled_from(FRAGMENTS)) + text[end:]
    return text


def well_formed(text, diagnostics) -> None:
    assert isinstance(diagnostics, list)
    lines = max(1, (text.decode("utf-8", "replace") if isinstance(text, bytes) else text).count("\n") + 2)
    for d in diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.severity in ("error", "warning") and d.message.strip()
        assert 1 <= d.line <= lines and d.column >= 1, (d.line, d.column, lines)
        d.format()
        d.to_json()


def survives(text) -> None:
    """check, compile and fmt: diagnostics or PlaybookError, never anything else."""
    diagnostics = dsl.check(text, FILE)
    well_formed(text, diagnostics)
    try:
        rulebook = dsl.compile(text, FILE)
    except dsl.PlaybookError as error:
        assert error.errors and all(d.severity == "error" for d in error.errors)
        assert any(d.severity == "error" for d in diagnostics)
        rulebook = None
        event("refused with diagnostics")
    else:
        assert not any(d.severity == "error" for d in diagnostics)
        event("checks clean and compiles")
    try:
        out = format_playbook(text, FILE)
    except dsl.PlaybookError:
        pass
    else:
        assert dsl.parse(out) == dsl.parse(text)
    return rulebook


@FUZZ
@given(PLAYBOOKS)
def test_generated_playbooks_check_compile_and_route(demo, text):
    rulebook = survives(text)
    if rulebook is not None:                        # it checks clean: it routes, never raises
        from server.demo import DEMO_ORDER
        decision = engine.route(rulebook, demo.network, demo.catalog, demo.stock(), DEMO_ORDER)
        assert decision.status in ("routed", "held", "error")


@FUZZ
@given(mutated_playbooks())
def test_mutated_playbooks_give_diagnostics_not_tracebacks(text):
    survives(text)


@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
       | st.lists(st.sampled_from(FRAGMENTS + [" ", "x", "1"]), max_size=60).map("".join))
def test_random_text_gives_diagnostics_not_tracebacks(text):
    survives(text)


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_give_diagnostics_not_tracebacks(raw):
    well_formed(raw, dsl.check(raw, FILE))
    with contextlib.suppress(dsl.PlaybookError):
        dsl.compile(raw, FILE)
