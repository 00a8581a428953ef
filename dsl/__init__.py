"""The playbook language: parse, check, compile, format."""

from .diagnostics import Diagnostic, PlaybookError
from .parser import parse

__all__ = ["parse", "Diagnostic", "PlaybookError"]
