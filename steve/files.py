"""Reading Steve's documents from files: playbooks, networks (JSON or YAML),
catalogs, stock CSV and orders. Every problem becomes an InputError that
names the file and the place in it."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import BaseModel, ValidationError

from dsl import KnownIds
from engine.models import Catalog, Network, StockRow
from engine.stock import Stock


class InputError(Exception):
    """A file Steve was given cannot be used; the message says where and why."""


def read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None


def read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None


def read_document(path: str) -> Any:
    """JSON, or YAML for .yaml/.yml files."""
    text = read_text(path)
    try:
        if path.endswith((".yaml", ".yml")):
            return yaml.safe_load(text)
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}:{error.lineno}:{error.colno}: not valid JSON: {error.msg}") from None
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {error}") from None


def validate(model: type[BaseModel], document: Any, path: str):
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InputError(f"{path}: " + describe_validation(error)) from None


def describe_validation(error: ValidationError) -> str:
    problems = []
    for item in error.errors(include_url=False)[:10]:
        loc = ".".join(str(p) for p in item["loc"]) or "(top level)"
        problems.append(f"{loc}: {item['msg']}")
    more = len(error.errors()) - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def load_network(path: str) -> Network:
    return validate(Network, read_document(path), path)


def load_catalog(path: str) -> Catalog:
    return validate(Catalog, read_document(path), path)


def load_stock(path: str) -> Stock:
    return Stock.from_rows(stock_rows(read_text(path), path))


def stock_rows(text: str, path: str = "stock.csv") -> list[StockRow]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"node", "sku", "on_hand"} - set(reader.fieldnames or ())
    if missing:
        raise InputError(f"{path}:1: the header needs the columns node,sku,on_hand "
                         f"(missing: {', '.join(sorted(missing))})")
    rows = []
    for number, row in enumerate(reader, start=2):
        try:
            rows.append(StockRow.model_validate({k: v for k, v in row.items() if k and v not in (None, "")}))
        except ValidationError as error:
            raise InputError(f"{path}:{number}: " + describe_validation(error)) from None
    return rows


def known_ids(path: str) -> KnownIds:
    network = load_network(path)
    return KnownIds(frozenset(n.id for n in network.nodes), frozenset(c.id for c in network.carriers))


def iter_jsonl(path: str) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, document or None, problem or None) for each non-blank line."""
    text = read_text(path)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line), None
        except json.JSONDecodeError as error:
            yield number, None, f"{path}:{number}: not valid JSON: {error.msg}"
