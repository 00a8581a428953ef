"""docs/ci-workflow.yml is a valid GitHub Actions workflow whose steps run
steve check, steve test and steve simulate --against --markdown, in that
order, with options the commands really have."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from steve.cli import main

WORKFLOW = Path(__file__).resolve().parent.parent / "docs" / "ci-workflow.yml"


def steve_commands(script: str) -> list[list[str]]:
    """The `steve …` command lines of a step's shell script, as argument lists."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        if not words or words[0] != "steve":
            continue
        cut = next((i for i, w in enumerate(words) if w in (">", ">>", "|", "&&", "||", ";")), len(words))
        commands.append(words[1:cut])
    return commands


def test_the_workflow_checks_tests_and_simulates():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))          # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    [job] = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    steps = job["steps"]
    assert all("run" in step or "uses" in step for step in steps)
    commands = [c for step in steps if "run" in step for c in steve_commands(step["run"])]
    assert [c[0] for c in commands] == ["check", "test", "simulate"]
    check, test, simulate = commands
    assert "--format" in check and "github" in check
    assert "--format" in test and "github" in test
    assert "--against" in simulate and "--markdown" in simulate and "--report" in simulate
    # the options exist and the required ones are given (click parses without running anything)
    for arguments in commands:
        name, rest = arguments[0], arguments[1:]
        command = main.commands[name]
        command.make_context(name, list(rest))
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "simulation.html"


def test_docs_ci_points_at_the_workflow():
    text = (WORKFLOW.parent / "ci.md").read_text()
    assert "ci-workflow.yml" in text
    for words in ("steve check", "steve test", "steve simulate", "--against", "--markdown"):
        assert words in text
