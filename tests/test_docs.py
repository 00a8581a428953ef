"""docs/language.md stays true: its playbook examples check as they say,
its facts table lists exactly dsl.facts.FACTS, and its limits are the code's.

Fences:
  ```playbook           a complete playbook; must check clean
  ```playbook-fragment  rules/groups/settings; checked clean after a header
  ```playbook-error     a complete playbook; `steve check` output for it
                        (file example.playbook) is the ```text block after it
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import dsl
from dsl import checker, facts, parser
from engine import matching

DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"
TEXT = DOC.read_text(encoding="utf-8")

FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<kind>[\w-]*)\n(?P<body>.*?)^(?P=indent)```[ ]*$",
                   re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[int, str, str]]:
    """(line, kind, text) of every fenced block, dedented."""
    found = []
    for match in FENCE.finditer(TEXT):
        line = TEXT.count("\n", 0, match.start()) + 1
        found.append((line, match.group("kind"), textwrap.dedent(match.group("body"))))
    return found


BLOCKS = blocks()
PLAYBOOKS = [(line, body) for line, kind, body in BLOCKS if kind == "playbook"]
FRAGMENTS = [(line, body) for line, kind, body in BLOCKS if kind == "playbook-fragment"]
ERRORS = [(line, body, BLOCKS[i + 1]) for i, (line, kind, body) in enumerate(BLOCKS)
          if kind == "playbook-error"]


def shown(diagnostics) -> str:
    return "\n".join(d.format() for d in diagnostics)


def test_the_doc_has_examples_of_each_sort():
    assert len(PLAYBOOKS) >= 1 and len(FRAGMENTS) >= 5 and len(ERRORS) >= 5
    kinds = {kind for _, kind, _ in BLOCKS}
    assert kinds <= {"playbook", "playbook-fragment", "playbook-error", "text", ""}, kinds


@pytest.mark.parametrize("line, body", PLAYBOOKS, ids=[f"line {line}" for line, _ in PLAYBOOKS])
def test_playbook_examples_check_clean(line, body):
    assert shown(dsl.check(body, f"language.md:{line}")) == ""


@pytest.mark.parametrize("line, body", FRAGMENTS, ids=[f"line {line}" for line, _ in FRAGMENTS])
def test_fragments_check_clean_in_a_minimal_playbook(line, body):
    assert not body.lstrip().lower().startswith("playbook"), "a fragment has no header"
    assert shown(dsl.check('playbook "Fragment"\n' + body, f"language.md:{line}")) == ""


@pytest.mark.parametrize("line, body, quoted", ERRORS, ids=[f"line {line}" for line, _, _ in ERRORS])
def test_error_examples_report_what_the_doc_quotes(line, body, quoted):
    _, kind, expected = quoted
    assert kind == "text", f"line {line}: the expected report must follow in a ```text block"
    diagnostics = dsl.check(body, "example.playbook")
    assert diagnostics, f"line {line}: the example has no problem"
    assert shown(diagnostics) == expected.rstrip("\n")


# ---- the facts table ------------------------------------------------------------------------

KINDS = {"text": "string", "number": "number", "money": "money", "percent": "percent",
         "distance": "distance", "weight": "weight", "duration": "duration", "day": "day",
         "time": "time", "node kind": "kind", "tags": "tags"}


def documented_facts() -> dict[tuple[str, str], tuple[str, str]]:
    table = TEXT.split("<!-- facts:begin -->", 1)[1].split("<!-- facts:end -->", 1)[0]
    rows = {}
    for row in table.strip().splitlines()[2:]:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        name, kind, scope = cells[0].strip("`"), cells[1], cells[2]
        fact, _, field = name.partition(".")
        kind = "choice:" + "|".join(kind.split(" or ")) if " or " in kind else KINDS[kind]
        assert (fact, field) not in rows, f"{name} is listed twice"
        rows[(fact, field)] = (kind, scope)
    return rows


def test_facts_table_lists_exactly_the_facts_of_dsl_facts():
    expected = {(fact, field): (kind, facts.FACT_SCOPE[fact])
                for fact, fields in facts.FACTS.items() if fact != "line"
                for field, kind in fields.items()}
    assert documented_facts() == expected


def test_line_is_documented_as_another_name_for_item():
    assert facts.FACTS["line"] is facts.FACTS["item"]
    assert "`line` is another name for `item`" in TEXT


# ---- the limits ------------------------------------------------------------------------------

def test_limits_are_the_code_limits():
    table = TEXT.split("## Limits", 1)[1].split("| --- | --- |", 1)[1].split("\n\n", 1)[0]
    rows = dict(tuple(c.strip() for c in row.strip().strip("|").split("|"))
                for row in table.strip().splitlines())
    assert rows == {
        "bytes in a playbook": f"{parser.MAX_BYTES:,}",
        "rules in a playbook": f"{checker.MAX_RULES:,}",
        "tests in one rule's condition": f"{checker.MAX_TESTS_PER_RULE:,}",
        "values in one list": f"{checker.MAX_LIST_VALUES:,}",
        "levels of parentheses, `not`, `and`, `or` nested": f"{parser.MAX_DEPTH:,}",
        "syntax errors reported per file": f"{parser.MAX_SYNTAX_ERRORS:,}",
        "fact-changing firings per order": f"{matching.MAX_CHAIN:,}",
        "firings per order": f"{matching.MAX_FIRINGS:,}",
    }
