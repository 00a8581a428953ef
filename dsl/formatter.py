"""`steve fmt`: the canonical layout of a playbook, keeping every comment.

    format_playbook(text, file="<playbook>") -> str

The text is parsed with `dsl.parse` first; a file with syntax errors raises
`PlaybookError` and is never rewritten. So does a file just under the size
limit that the canonical layout would push over it (the parser would refuse
the result). The result always parses to the same
syntax tree (parse(fmt(x)) == parse(x)) and formatting it again changes
nothing (fmt(fmt(x)) == fmt(x)).

Layout
------
- Statements stay in the order written (the header first when it is written
  first). One statement per line; the header and the settings form one block,
  the groups one block, and each rule is its own block; one blank line
  separates blocks. No other blank lines, except around comments (below).
- `rule "Name"` at column 0, then its clauses in the order written, each on
  its own line indented two spaces: `priority N`, `when <condition>`,
  `then <action>`.
- Several actions: the first follows `then`; each further action is on its
  own line, indented two spaces, as `and <action>` (whether or not the
  source joined them with `and`; both mean the same).
- A line longer than 88 columns is broken, with continuation lines indented
  four spaces: a condition first before every `and` / `or` of its outermost
  level, then, for lines still too long, before deeper `and` / `or` (two
  more spaces per level of nesting, so an `or` inside brackets does not read
  as an outer one) and after the commas of value lists, as many items per
  line as fit. Node lists
  of groups are filled the same way (broken after commas). Actions are
  never broken.
- Keywords are written in lower case (`optimise`/`penalise` become
  `optimize`/`penalize`, `allow in transit` becomes `allow in-transit`,
  `keep 1 units` becomes `keep 1 unit`). Names of facts and fields, strings
  and literals are written as the user wrote them (`Literal.text`, which has
  single spaces: `4.50 USD`, `$6.00`, `20 kg`, `TUESDAY`). Because a literal's
  text is part of the syntax tree, a word such as `optimize COST` keeps its
  case. Parentheses stay exactly where they were written; nothing is added.
- `is one of` / `in` and `is not one of` / `not in` are kept as written
  (they mean the same; the reader chose the words).
- One space between tokens; none inside parentheses or before commas.
- The output ends with exactly one newline (an empty playbook is "\\n").

Comments
--------
- A full-line comment stays attached to the code that follows it, on its own
  line at that code's indentation: before a statement at column 0, before a
  clause or a further action at two spaces, before a continuation line at
  four spaces. A full-line comment written inside a condition at an
  `and` / `or` (or between two items of a list) forces a line break there, so
  it stays between the same two pieces of code. One written inside a single
  test or action goes just before the line holding it.
- Indented full-line comments directly after the last line of a rule (no
  blank line between) stay with that rule, indented two spaces.
- At the top level, a blank line that separated comments from each other or
  from the code is kept (one at most), so file headers and section notes stay
  visually apart.
- A trailing comment (after code on the same line) stays at the end of the
  line where that code lands, two spaces after the code. A trailing comment at
  an `and` / `or` or after a comma forces a line break there. Two trailing
  comments that land on one line are joined there, two spaces apart.
- Comments always come out in the order they were written: a trailing
  comment that would otherwise end up on the wrong side of a full-line
  comment (both written inside one test) goes on its own line next to it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace

from . import nodes as n
from . import parser
from .compiler import describe
from .diagnostics import Diagnostic, PlaybookError
from .parser import parse

MAX_WIDTH = 88
INDENT = 2           # clauses and further actions
CONTINUATION = 4     # continuation lines of a long condition or list
_LIST_LEVEL = 1_000_000   # break level of list commas: below every and/or


# ---- building blocks ------------------------------------------------------------

@dataclass
class _Tok:
    text: str
    start: int
    end: int
    glue_left: bool = False     # no space before (")")
    glue_right: bool = False    # no space after ("(")


@dataclass
class _Break:
    level: int


@dataclass
class _Seg:
    text: str
    start: int
    end: int


@dataclass
class _Item:
    """One logical line: a statement head, a clause, or a further action."""
    indent: int
    parts: list            # _Tok and _Break
    top: bool              # a top-level statement
    in_rule: bool
    blank_before: bool


@dataclass
class _Line:
    indent: int
    text: str
    segs: list[_Seg]
    item: _Item
    first: bool            # first physical line of its item
    trailing: list["_Comment"] = field(default_factory=list)


@dataclass(frozen=True)
class _Comment:
    line: int
    column: int
    pos: int
    text: str
    full_line: bool


class _Source:
    def __init__(self, text: str):
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1

    def start(self, span: n.Span) -> int:
        return self.offset(span.line, span.column)

    def end(self, span: n.Span) -> int:
        return self.offset(span.end_line, span.end_column)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def blank_between(self, line_a: int, line_b: int) -> bool:
        """Is any line strictly between lines a and b (1-based) blank?"""
        return any(not self.lines[i - 1].strip() for i in range(line_a + 1, line_b))


# ---- the formatter -------------------------------------------------------------------

def format_playbook(text: str | bytes, file: str = "<playbook>") -> str:
    """The canonical layout of a playbook (see the module docstring).
    Raises PlaybookError when the text does not parse."""
    playbook = parse(text, file)
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    text = text.removeprefix("\ufeff")
    out = _Formatter(playbook, _Source(text)).run()
    size = len(out.encode("utf-8", "surrogatepass"))
    if size > parser.MAX_BYTES:
        raise PlaybookError([Diagnostic(
            file, 1, 1, "error", f"formatted, the playbook would be {size:,} bytes; the limit is "
            f"{parser.MAX_BYTES:,} bytes, so it is left as it is")])
    return out


class _Formatter:
    def __init__(self, playbook: n.Playbook, source: _Source):
        self.playbook = playbook
        self.src = source
        self.comments = []
        for line, column, text in playbook.comments:
            pos = source.offset(line, column)
            before = source.text[source.starts[line - 1]:pos]
            self.comments.append(_Comment(line, column, pos, text.rstrip(), not before.strip()))
        self.comment_positions = [c.pos for c in self.comments]

    # -- items ---------------------------------------------------------------

    def items(self) -> list[_Item]:
        items: list[_Item] = []
        previous = None
        for statement in self.playbook.statements:
            section = type(statement) if not isinstance(statement, n.Header) else n.Setting
            blank = previous is not None and (section is not previous or section is n.Rule)
            previous = section
            if isinstance(statement, n.Rule):
                items.extend(self.rule(statement, blank))
            else:
                items.append(_Item(0, self.statement(statement), True, False, blank))
        return items

    def statement(self, statement) -> list:
        src = self.src
        start, end = src.start(statement.span), src.end(statement.span)
        if isinstance(statement, n.Header):
            return [_Tok(f'playbook "{statement.name}"', start, end)]
        if isinstance(statement, n.Setting):
            words = {"timezone": "timezone", "currency": "currency", "optimize": "optimize",
                     "day_value": "a day saved is worth", "split_penalty": "split penalty",
                     "max_shipments": "max shipments"}[statement.name]
            return [_Tok(f"{words} {statement.value.text}", start, end)]
        # a group
        head = f'group "{statement.name}" is nodes'
        head_end = src.end(statement.name_span)
        if statement.where is not None:
            return [_Tok(head + " where", start, head_end)] + self.condition(statement.where)
        parts: list = [_Tok(head, start, head_end)]
        self.value_list(statement.nodes, parts)
        return parts

    def rule(self, rule: n.Rule, blank: bool) -> list[_Item]:
        src = self.src
        items = [_Item(0, [_Tok(f'rule "{rule.name}"', src.start(rule.span),
                                src.end(rule.name_span))], True, False, blank)]
        last_when = max((i for i, c in enumerate(rule.clauses) if c == "when"), default=None)
        for index, (clause, span) in enumerate(zip(rule.clauses, rule.clause_spans)):
            start, end = src.start(span), src.end(span)
            if clause == "priority":
                number = re.search(r"-?\d+(?:\.\d+)?$", src.text[start:end].rstrip()).group(0)
                items.append(_Item(INDENT, [_Tok(f"priority {number}", start, end)], False, True, False))
            elif clause == "when":
                condition = rule.when if index == last_when else self.lost_condition(rule, span)
                parts = [_Tok("when", start, start + 4)] + self.condition(condition)
                items.append(_Item(INDENT, parts, False, True, False))
            else:
                actions = [a for a in rule.actions if start <= src.start(a.span) < end]
                for number, action in enumerate(actions):
                    a_start, a_end = src.start(action.span), src.end(action.span)
                    if number == 0:
                        parts = [_Tok("then", start, start + 4), _Tok(describe(action), a_start, a_end)]
                    else:
                        parts = [_Tok("and " + describe(action), a_start, a_end)]
                    items.append(_Item(INDENT, parts, False, True, False))
        return items

    def lost_condition(self, rule: n.Rule, span: n.Span) -> n.Condition:
        """The condition of a `when` clause that a later `when` of the same
        rule replaced in the tree (the checker reports the pair): parse the
        clause alone, then move its spans back to where the clause is."""
        src = self.src
        clause = src.text[src.start(span):src.end(span)]
        probe = parse('rule ""\n' + clause, self.playbook.file).rules[0].when

        def moved(old: n.Span) -> n.Span:
            def place(line: int, column: int) -> tuple[int, int]:
                if line == 2:
                    return span.line, span.column + column - 1
                return span.line + line - 2, column
            line, column = place(old.line, old.column)
            end_line, end_column = place(old.end_line, old.end_column)
            return n.Span(old.file, line, column, end_line, end_column)

        def move(node):
            if isinstance(node, n.Test):
                return replace(node, path=move(node.path), values=tuple(move(v) for v in node.values),
                               span=moved(node.span), op_span=moved(node.op_span))
            if isinstance(node, (n.Not, n.Paren)):
                return replace(node, operand=move(node.operand), span=moved(node.span))
            if isinstance(node, (n.All, n.Any)):
                return replace(node, operands=tuple(move(o) for o in node.operands),
                               span=moved(node.span))
            return replace(node, span=moved(node.span))      # Literal, Path

        return move(probe)

    # -- conditions --------------------------------------------------------------

    def condition(self, condition: n.Condition, depth: int = 0) -> list:
        src = self.src
        if isinstance(condition, n.Test):
            return self.test(condition, depth)
        start, end = src.start(condition.span), src.end(condition.span)
        if isinstance(condition, n.Not):
            return [_Tok("not", start, start + 3)] + self.condition(condition.operand, depth)
        if isinstance(condition, n.Paren):
            return ([_Tok("(", start, start + 1, glue_right=True)]
                    + self.condition(condition.operand, depth)
                    + [_Tok(")", end - 1, end, glue_left=True)])
        word = "and" if isinstance(condition, n.All) else "or"
        parts: list = []
        for number, operand in enumerate(condition.operands):
            if number:
                operand_start = src.start(operand.span)
                parts += [_Break(depth), _Tok(word, operand_start, operand_start)]
            parts += self.condition(operand, depth + 1)
        return parts

    def test(self, test: n.Test, depth: int = 0) -> list:
        src = self.src
        parts: list = [_Tok(test.path.text, src.start(test.path.span), src.end(test.path.span))]
        op, values = test.op, test.values
        op_start = src.start(test.op_span)
        if op in ("in", "not in"):
            written_is = src.text[op_start:op_start + 2].lower() == "is"
            if op == "in":
                words = "is one of" if written_is else "in"
            else:
                words = "is not one of" if written_is else "not in"
            parts.append(_Tok(words, op_start, op_start))
            # a list inside and/or continues at the indent of the and/or around it
            self.value_list(values, parts, _LIST_LEVEL + max(depth - 1, 0))
            return parts
        if op == "between":
            parts += [_Tok("between", op_start, op_start), self.value(values[0]),
                      _Tok("and", op_start, op_start), self.value(values[1])]
            return parts
        parts += [_Tok(op, op_start, op_start), self.value(values[0])]
        return parts

    def value(self, value: n.Value) -> _Tok:
        return _Tok(value.text, self.src.start(value.span), self.src.end(value.span))

    def value_list(self, values, parts: list, level: int = _LIST_LEVEL) -> None:
        for number, value in enumerate(values):
            token = self.value(value)
            if number < len(values) - 1:
                token.text += ","
            if number:
                parts.append(_Break(level))
            parts.append(token)

    # -- layout ------------------------------------------------------------------

    def layout(self, item: _Item) -> list[_Line]:
        segs: list[_Seg] = []
        levels: list[int] = []
        current: list[_Tok] = []

        def close() -> None:
            text = current[0].text
            for before, token in zip(current, current[1:]):
                text += ("" if before.glue_right or token.glue_left else " ") + token.text
            segs.append(_Seg(text, current[0].start, current[-1].end))

        for part in item.parts:
            if isinstance(part, _Break):
                close()
                current = []
                levels.append(part.level)
            else:
                current.append(part)
        close()

        forced = [self.comment_in(segs[k].end, segs[k + 1].start) for k in range(len(levels))]
        one_line = item.indent + len(" ".join(s.text for s in segs))
        hard = list(forced)
        boolean_levels = [level for level in levels if level < _LIST_LEVEL]
        if one_line > MAX_WIDTH and boolean_levels:
            outer = min(boolean_levels)
            hard = [f or level == outer for f, level in zip(forced, levels)]
        outer = min(boolean_levels, default=0)

        def indent_at(k: int) -> int:
            """A continuation line that starts at segment k: two more spaces
            per and/or nesting below the outermost, so that an `or` inside
            brackets does not read as one of the outer level. A list's
            comma breaks carry the level of the and/or around the list."""
            level = levels[k - 1]
            if level >= _LIST_LEVEL:
                level -= _LIST_LEVEL
            return CONTINUATION + 2 * (level - outer) if outer < level < _LIST_LEVEL else CONTINUATION

        groups: list[list[int]] = [[0]]
        for k in range(len(levels)):
            if hard[k]:
                groups.append([k + 1])
            else:
                groups[-1].append(k + 1)
        rows: list[list[int]] = []
        for group in groups:
            row = [group[0]]
            width = (item.indent if not rows else indent_at(group[0])) + len(segs[group[0]].text)
            for k in group[1:]:
                if width + 1 + len(segs[k].text) <= MAX_WIDTH:
                    row.append(k)
                    width += 1 + len(segs[k].text)
                else:
                    rows.append(row)
                    row = [k]
                    width = indent_at(k) + len(segs[k].text)
            rows.append(row)
        lines = []
        for number, row in enumerate(rows):
            indent = item.indent if number == 0 else indent_at(row[0])
            lines.append(_Line(indent, " ".join(segs[k].text for k in row),
                               [segs[k] for k in row], item, number == 0))
        return lines

    def comment_in(self, start: int, end: int) -> bool:
        index = bisect.bisect_left(self.comment_positions, start)
        return index < len(self.comment_positions) and self.comment_positions[index] < end

    # -- putting it together ----------------------------------------------------------

    def run(self) -> str:
        lines = [line for item in self.items() for line in self.layout(item)]
        seg_starts, seg_ends, seg_lines = [], [], []
        for number, line in enumerate(lines):
            for seg in line.segs:
                seg_starts.append(seg.start)
                seg_ends.append(seg.end)
                seg_lines.append(number)
        assert seg_starts == sorted(seg_starts), "formatter emitted code out of source order"

        before: dict[int, list[_Comment]] = {}   # line index (len(lines) = end of file)
        for comment in self.comments:
            last = bisect.bisect_left(seg_starts, comment.pos) - 1   # last seg starting before
            if not comment.full_line and last >= 0:
                lines[seg_lines[last]].trailing.append(comment)
                continue
            if last >= 0 and comment.pos < seg_ends[last]:
                target = seg_lines[last]            # inside a piece of code: before its line
            elif last + 1 < len(seg_starts):
                target = seg_lines[last + 1]        # before the code that follows
            else:
                target = len(lines)
            before.setdefault(target, []).append(comment)
        self.keep_order(lines, before)

        out: list[str | None] = []                 # None is a blank line
        for number in range(len(lines) + 1):
            line = lines[number] if number < len(lines) else None
            block = before.get(number, [])
            at_top = line is None or (line.first and line.item.top)
            if line is not None and line.first and line.item.blank_before:
                out.append(None)
            if at_top and number > 0:
                block = self.keep_with_rule(lines[number - 1], block, out)
            if at_top:
                self.top_block(block, lines[number - 1] if number else None, line, out)
            else:
                out += [" " * line.indent + c.text for c in block]
            if line is not None:
                code = " " * line.indent + line.text
                out.append("  ".join([code] + [c.text for c in line.trailing]))

        while out and out[0] is None:
            out.pop(0)
        while out and out[-1] is None:
            out.pop()
        result: list[str] = []
        for entry in out:
            if entry is None and result and result[-1] == "":
                continue
            result.append("" if entry is None else entry)
        return "\n".join(result) + "\n"

    @staticmethod
    def keep_order(lines: list[_Line], before: dict[int, list[_Comment]]) -> None:
        """Comments come out in the order written: a trailing comment that was
        written before a full-line comment placed above its line, or after a
        full-line comment placed below it, joins that comment on its own line."""
        for number, line in enumerate(lines):
            if not line.trailing:
                continue
            above = before.get(number, [])
            inside = [c.pos for c in above if c.pos > line.segs[0].start]
            below = before.get(number + 1, [])
            move_up = [c for c in line.trailing if inside and c.pos < max(inside)]
            move_down = [c for c in line.trailing if c not in move_up and below
                         and c.pos > min(b.pos for b in below)]
            if move_up:
                before[number] = sorted(above + move_up, key=lambda c: c.pos)
            if move_down:
                before[number + 1] = sorted(below + move_down, key=lambda c: c.pos)
            line.trailing = [c for c in line.trailing if c not in move_up and c not in move_down]

    def keep_with_rule(self, previous: _Line, block: list[_Comment], out: list) -> list[_Comment]:
        """Indented comments right under a rule's last line stay in the rule."""
        if not previous.item.in_rule:
            return block
        last_line = self.src.line_of(previous.segs[-1].end - 1)
        kept = 0
        for comment in block:
            if comment.column == 1 or self.src.blank_between(last_line, comment.line):
                break
            kept += 1
            last_line = comment.line
        if kept:
            # they belong right after the previous line, before any section blank
            blank = out and out[-1] is None
            if blank:
                out.pop()
            out += [" " * INDENT + c.text for c in block[:kept]]
            if blank:
                out.append(None)
        return block[kept:]

    def top_block(self, block: list[_Comment], previous: _Line | None, line: _Line | None,
                  out: list) -> None:
        if not block:
            return
        src = self.src
        indent = " " * (line.indent if line is not None else 0)
        if previous is not None:
            previous_line = src.line_of(previous.segs[-1].end - 1)
            if src.blank_between(previous_line, block[0].line):
                out.append(None)
        for number, comment in enumerate(block):
            out.append(indent + comment.text)
            if number + 1 < len(block) and src.blank_between(comment.line, block[number + 1].line):
                out.append(None)
        if line is not None and src.blank_between(block[-1].line, src.line_of(line.segs[0].start)):
            out.append(None)


__all__ = ["format_playbook", "MAX_WIDTH"]
