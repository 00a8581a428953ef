"""docs/api.md cannot drift: every curl example in it runs, in document
order, against a live `steve serve --demo` (host and port rewritten), and
answers with the HTTP status written next to it.

An example is a ```sh block whose first line starts with `curl`; it holds one
curl command (continuation lines and a heredoc body are fine) and a comment
`# → 201` with the status it answers with. A comment `# server: steve serve
--demo --token s3cret` runs it against a server started with those options
(one server per distinct command line, in document order, all from empty
demo databases). Examples run with /bin/sh in one shared working directory,
so a file one example saves (`-o network.json`) is there for the next.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from live_server import LiveServer

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
DOC_BASE = "http://127.0.0.1:8000"
DEFAULT_SERVER = "steve serve --demo"
STATUS_MARK = "@@status="


@dataclass(frozen=True)
class Example:
    line: int              # where the block starts in docs/api.md
    script: str
    status: int
    server: str            # the `steve serve …` command it runs against

    @property
    def method_and_path(self) -> tuple[str, str]:
        words = shlex.split(self.script.split("<<", 1)[0].replace("\\\n", " "), comments=True)
        method = "GET"
        if any(w in words for w in ("-d", "--data", "--data-binary", "--data-raw", "--json")):
            method = "POST"
        for flag, value in zip(words, words[1:]):
            if flag in ("-X", "--request"):
                method = value.upper()
        url = next(w for w in words if w.startswith(DOC_BASE))
        return method, url[len(DOC_BASE):].split("?", 1)[0]

    @property
    def label(self) -> str:
        method, path = self.method_and_path
        return f"L{self.line}-{method}-{path}"


def examples(text: str) -> list[Example]:
    found = []
    for match in re.finditer(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        script = match.group(1)
        if not script.lstrip().startswith("curl"):
            continue
        line = text.count("\n", 0, match.start()) + 1
        statuses = re.findall(r"^# → (\d{3})\b", script, flags=re.M)
        assert len(statuses) == 1, f"docs/api.md:{line}: an example needs exactly one '# → STATUS' line"
        assert len(re.findall(r"^curl\b", script, flags=re.M)) == 1, f"docs/api.md:{line}: one curl per example"
        server = re.search(r"^# server: (.+)$", script, flags=re.M)
        found.append(Example(line, script, int(statuses[0]), server.group(1).strip() if server else DEFAULT_SERVER))
    return found


EXAMPLES = examples(DOC.read_text(encoding="utf-8"))


def run(example: Example, base: str, cwd: Path) -> tuple[int, str]:
    """Run the example as written (host and port rewritten) and return (status, output)."""
    script = example.script.replace(DOC_BASE, base)
    # curl's own -w reports the status after the body (which stays as the example prints it)
    script = re.sub(r"^curl\b", f"curl -sS -w '\\n{STATUS_MARK}%{{http_code}}'", script, count=1, flags=re.M)
    done = subprocess.run(["/bin/sh", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"docs/api.md:{example.line}: the example failed:\n{done.stderr}"
    output, _, status = done.stdout.rpartition(STATUS_MARK)
    return int(status.strip()), output


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Servers by command line, started when an example first needs one."""
    started: dict[str, LiveServer] = {}

    def get(command: str) -> LiveServer:
        if command not in started:
            words = shlex.split(command)
            assert words[:2] == ["steve", "serve"], f"examples run against `steve serve …`, not {command!r}"
            folder = tmp_path_factory.mktemp("docs-server")
            started[command] = LiveServer(folder, *words[2:]).start()
        return started[command]

    yield get
    for live in started.values():
        live.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("docs-examples")


def test_the_docs_have_examples():
    assert len(EXAMPLES) >= 30


def test_every_endpoint_has_an_example():
    from server.app import ROUTES

    shown = {example.method_and_path for example in EXAMPLES}
    for route in ROUTES:
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", route.path) + "$")
        for method in route.methods - {"HEAD"}:
            assert any(m == method and pattern.match(p) for m, p in shown), \
                f"docs/api.md has no curl example for {method} {route.path}"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.label for e in EXAMPLES])
def test_example_answers_as_documented(example, servers, workdir):
    live = servers(example.server)
    status, output = run(example, live.base, workdir)
    assert status == example.status, \
        f"docs/api.md:{example.line}: documented {example.status}, got {status}:\n{output[:2000]}"
