"""The playbook language: parse, check, compile and format playbooks.

    text --parse--> Playbook (syntax tree) --check--> diagnostics
         --compile--> Rulebook (plain rule objects for the engine)
"""

from __future__ import annotations

from .checker import KnownIds
from .checker import check as _check_tree
from .compiler import Rulebook, compile_playbook, version_of
from .diagnostics import Diagnostic, PlaybookError, render, summary
from .nodes import Playbook
from .parser import parse, parse_partial


def check(text: str | bytes, file: str = "<playbook>", known: KnownIds | None = None) -> list[Diagnostic]:
    """Every problem in a playbook text, sorted by position. Never raises."""
    playbook, diagnostics = parse_partial(text, file)
    if playbook is not None:
        source = text.decode("utf-8") if isinstance(text, bytes) else text
        diagnostics = diagnostics + _check_tree(playbook, source.removeprefix("\ufeff"), known)
    return sorted(diagnostics, key=lambda d: d.sort_key)


def compile(text: str | bytes, file: str = "<playbook>", known: KnownIds | None = None, *,
            stored: bool = False) -> Rulebook:
    """Parse, check and compile. Raises PlaybookError when there is any error.
    `stored`: a version that checked clean when it was stored; the checker's
    errors (a later, stricter checker's) do not stop it, so that it keeps
    the meaning it had; only a syntax error raises."""
    playbook = parse(text, file)
    source = (text.decode("utf-8") if isinstance(text, bytes) else text).removeprefix("\ufeff")
    diagnostics = tuple(_check_tree(playbook, source, known))
    if stored and any(d.severity == "error" for d in diagnostics):
        diagnostics = ()
    return compile_playbook(playbook, source, diagnostics)


__all__ = ["parse", "check", "compile", "Rulebook", "Playbook", "Diagnostic", "PlaybookError",
           "KnownIds", "render", "summary", "version_of"]
