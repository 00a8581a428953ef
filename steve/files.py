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
from dsl.diagnostics import did_you_mean
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


def load_stock(path: str, network: Network | None = None, catalog: Catalog | None = None) -> Stock:
    """The stock file. Given the network and catalog, its rows are checked
    as PUT /stock checks its rows: a channel alias stands for its sku, and a
    node or item Steve does not know is an error."""
    return Stock.from_rows(stock_rows(read_text(path), path, network, catalog))


COLUMNS = ("node", "sku", "on_hand")


def stock_rows(text: str, path: str = "stock.csv", network: Network | None = None,
               catalog: Catalog | None = None) -> list[StockRow]:
    """The rows of a stock CSV: a header naming at least node,sku,on_hand (in
    any order; `reserved` is read too, other columns are ignored), then one
    row per node and item. Every problem is an InputError `FILE:LINE: what`;
    when there are several, the first is told and the others counted."""
    lines = _csv_lines(text, path)
    line, header = next(lines, (0, []))
    header = [name.strip() for name in header]
    _check_header(header, path, line)
    rows, problems, seen = [], [], {}
    for line, values in lines:
        at = f"{path}:{line}"
        if len(values) != len(header):
            problems.append(f"{at}: {len(values)} values where the header has {len(header)} columns "
                            f"({','.join(header)})")
            continue
        empty = [name for name in COLUMNS if not values[header.index(name)].strip()]
        if empty:
            problems.append(f"{at}: no {' and no '.join(empty)}")
            continue
        try:
            row = StockRow.model_validate({k: v for k, v in zip(header, values) if v.strip()})
        except ValidationError as error:
            problems.append(f"{at}: " + describe_validation(error))
            continue
        unknown = unknown_names(row, network, catalog)
        if unknown:
            problems += [f"{at}: {what}" for what in unknown]
            continue
        written = row.sku
        if catalog is not None and catalog.resolve(written).sku != written:
            row = row.model_copy(update={"sku": catalog.resolve(written).sku})
        if (row.node, row.sku) in seen:
            first, named = seen[row.node, row.sku]
            aliases = "".join(f"; {name} is an alias of {row.sku}" for name in sorted({named, written} - {row.sku}))
            problems.append(f"{at}: a second row for {row.node} and {row.sku} (the first is on line {first}"
                            f"{aliases}); give one row per node and item")
            continue
        seen[row.node, row.sku] = (line, written)
        rows.append(row)
    if problems:
        more = len(problems) - 1
        raise InputError(problems[0] + (f" (and {more} more problem{'s' * (more > 1)})" if more else ""))
    return rows


def _csv_lines(text: str, path: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, values) of each CSV row that is not blank."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))      # a spreadsheet's byte-order mark
    try:
        for values in reader:
            if any(value.strip() for value in values):
                yield reader.line_num, values
    except csv.Error as error:
        raise InputError(f"{path}:{reader.line_num}: not valid CSV: {error}") from None


def _check_header(header: list[str], path: str, line: int) -> None:
    if not header:
        raise InputError(f"{path}: empty; a stock file starts with the header {','.join(COLUMNS)}")
    if not set(COLUMNS) & set(header):
        raise InputError(f"{path}:{line}: the first line must be the header {','.join(COLUMNS)} "
                         f"(it is {','.join(header)})")
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise InputError(f"{path}:{line}: the header needs the columns {','.join(COLUMNS)} "
                         f"(missing: {', '.join(missing)})")
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:
        raise InputError(f"{path}:{line}: the header names {', '.join(twice)} twice")


def unknown_names(row: StockRow, network: Network | None, catalog: Catalog | None) -> list[str]:
    """What PUT /stock refuses in a stock row: a node the network does not
    have, an item no sku or channel alias of the catalog names."""
    problems = []
    if network is not None and network.node(row.node) is None:
        problems.append(f"unknown node {row.node!r}: the network has no such node"
                        + did_you_mean(row.node, [n.id for n in network.nodes]))
    if catalog is not None and catalog.resolve(row.sku) is None:
        problems.append(f"unknown item {row.sku!r}: no sku or channel alias in the catalog has that name"
                        + did_you_mean(row.sku, [i.sku for i in catalog.items]))
    return problems


def known_ids(path: str) -> KnownIds:
    return KnownIds.of(load_network(path))


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
