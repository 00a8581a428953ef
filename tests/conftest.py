"""Shared fixtures: the bundled demo (rulebooks/) and the seed contract copy
(tests/fixtures/seed/), loaded through the same functions the CLI uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dsl
from steve.files import load_catalog, load_network, load_stock

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
RULEBOOKS = ROOT / "rulebooks"
SEED = FIXTURES / "seed"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Setup:
    """A playbook with its network, catalog and stock files."""

    def __init__(self, folder: Path, playbook: str):
        self.folder = folder
        self.playbook_path = folder / playbook
        self.rulebook = dsl.compile(self.playbook_path.read_text(), playbook)
        self.network = load_network(str(folder / "network.json"))
        self.catalog = load_catalog(str(folder / "catalog.json"))

    def stock(self):
        return load_stock(str(self.folder / "stock.csv"), self.network, self.catalog)

    def paths(self) -> list[str]:
        return ["--playbook", str(self.playbook_path), "--network", str(self.folder / "network.json"),
                "--catalog", str(self.folder / "catalog.json"), "--stock", str(self.folder / "stock.csv")]


@pytest.fixture(scope="session")
def demo() -> Setup:
    return Setup(RULEBOOKS, "demo.playbook")


@pytest.fixture(scope="session")
def seed() -> Setup:
    return Setup(SEED, "seed.playbook")
