"""Problems found in a playbook, and how they are shown to people and machines."""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence

from .nodes import Span


@dataclass(frozen=True)
class Diagnostic:
    file: str
    line: int
    column: int
    severity: str            # "error" | "warning"
    message: str
    end_column: int | None = None
    source_line: str = ""
    related: tuple[Span, ...] = field(default=())

    @classmethod
    def at(cls, span: Span, severity: str, message: str, source: str = "",
           related: Sequence[Span] = ()) -> "Diagnostic":
        end = span.end_column if span.end_line == span.line else None
        return cls(span.file, span.line, span.column, severity, message, end,
                   _line_of(source, span.line), tuple(related))

    @property
    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.severity != "error", self.message)

    def format(self) -> str:
        """`FILE:LINE:COL: severity: message`, the source line, and a caret."""
        head = f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"
        if not self.source_line:
            return head
        text = self.source_line.replace("\t", " ")
        width = 1
        if self.end_column and self.end_column > self.column:
            width = self.end_column - self.column
        width = max(1, min(width, len(text) - self.column + 1))
        caret = " " * (self.column - 1) + "^" * width
        return f"{head}\n    {text}\n    {caret}"

    def format_github(self) -> str:
        level = "error" if self.severity == "error" else "warning"
        message = self.message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return f"::{level} file={self.file},line={self.line},col={self.column}::{message}"

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "column": self.column,
                "end_column": self.end_column, "severity": self.severity,
                "message": self.message,
                "related": [{"file": s.file, "line": s.line, "column": s.column}
                            for s in self.related]}


class PlaybookError(Exception):
    """Raised when a playbook cannot be used; carries every diagnostic."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=lambda d: d.sort_key)
        first = self.diagnostics[0].format().splitlines()[0] if self.diagnostics else "invalid playbook"
        more = len(self.errors) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean "x"?` for the closest choice, or an empty string."""
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f'; did you mean "{lowered[match[0]]}"?' if match else ""


def render(diagnostics: Sequence[Diagnostic], style: str = "text") -> str:
    ordered = sorted(diagnostics, key=lambda d: d.sort_key)
    if style == "json":
        return json.dumps([d.to_json() for d in ordered], indent=2)
    if style == "github":
        return "\n".join(d.format_github() for d in ordered)
    return "\n".join(d.format() for d in ordered)


def _line_of(source: str, line: int) -> str:
    if not source or line < 1:
        return ""
    lines = source.split("\n")
    return lines[line - 1].rstrip("\r") if line <= len(lines) else ""


def summary(diagnostics: Sequence[Diagnostic]) -> str:
    errors = sum(d.severity == "error" for d in diagnostics)
    warnings = len(diagnostics) - errors
    parts = [f"{errors} error" + ("s" if errors != 1 else "")]
    if warnings:
        parts.append(f"{warnings} warning" + ("s" if warnings != 1 else ""))
    return ", ".join(parts)


__all__ = ["Diagnostic", "PlaybookError", "did_you_mean", "render", "summary", "asdict"]
