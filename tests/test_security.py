"""Security basics, checked rather than promised:

* the token is compared in constant time and never written anywhere: not
  to the server's output, not to the audit log, not echoed in an answer;
* no playbook or order text is ever executed: no eval/exec (or anything
  like them) in dsl/, engine/, server/ or steve/;
* every SQL statement in server/ is parameterised: the only text built into
  SQL is `?` placeholders and one integer setting;
* the audit log says who changed stock, the network, the catalog and the
  playbooks, and when (actor from X-Steve-Actor, else "token");
* JSON values of the wrong kind are refused instead of coerced (a `true`
  is not one unit; schemathesis found these).
"""

from __future__ import annotations

import ast
import datetime as dt
import warnings
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from conftest import ROOT
from live_server import LiveServer
from server.app import create_app
from server.demo import DEMO_ORDER, load_demo
from server.store import Store

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`",
                            category=StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TOKEN = "tok-3f9a1c77e2b54d0c"
PACKAGES = ("dsl", "engine", "server", "steve")


def sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def call_name(node: ast.Call) -> str:
    """`eval`, `pickle.loads`, `self.conn.execute` … for a call."""
    parts, func = [], node.func
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


# ---- nothing is executed ------------------------------------------------------------------------

# Calls that run text as code, load code-bearing formats, or start programs.
DANGEROUS = {"eval", "exec", "__import__", "compile", "importlib.import_module", "pickle.loads",
             "pickle.load", "marshal.loads", "shelve.open", "yaml.load", "yaml.unsafe_load",
             "os.system", "os.popen", "subprocess.run", "subprocess.Popen", "subprocess.call",
             "subprocess.check_output", "runpy.run_path", "runpy.run_module"}


def test_no_eval_exec_or_code_loading_anywhere():
    found = []
    for path in sources(*PACKAGES):
        tree = ast.parse(path.read_text(), str(path))
        local = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        imported = {alias.asname or alias.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    for alias in n.names}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = call_name(node)
            if name == "compile" and ("compile" in local or "compile" in imported):
                continue            # dsl.compile: the playbook compiler, not the builtin
            if name in DANGEROUS or name.split(".")[-1] in {"eval", "exec"}:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}(…)")
    assert not found, "code that could run text as Python:\n" + "\n".join(found)


def test_the_scan_would_see_an_eval(tmp_path):
    """The check above can fail: the same walk finds these."""
    tree = ast.parse("import pickle, yaml\neval(text)\nexec(text)\npickle.loads(b)\nyaml.load(s)\n")
    names = {call_name(n) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert {"eval", "exec", "pickle.loads", "yaml.load"} <= names & DANGEROUS


# ---- SQL is parameterised -------------------------------------------------------------------

SQL_CALLS = {"execute", "executemany", "executescript", "query"}


def counters(tree: ast.AST) -> set[str]:
    """Names bound to enumerate()'s index (`for number, item in enumerate(…)`): integers."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.comprehension)) and isinstance(node.iter, ast.Call) \
                and call_name(node.iter) == "enumerate" and isinstance(node.target, ast.Tuple) \
                and isinstance(node.target.elts[0], ast.Name):
            out.add(node.target.elts[0].id)
    return out


def built_sql(path: Path) -> list[tuple[int, str]]:
    """SQL arguments built from anything but string literals, `?` placeholders
    (`marks`), enumerate() counters and the integer busy timeout: (line, source)."""
    tree = ast.parse(path.read_text(), str(path))
    integers = counters(tree)
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and call_name(node).split(".")[-1] in SQL_CALLS and node.args):
            continue
        sql = node.args[0]
        if isinstance(sql, ast.Constant) and isinstance(sql.value, str):
            continue
        if isinstance(sql, ast.BinOp) and all(isinstance(s, ast.Constant) for s in (sql.left, sql.right)):
            continue
        if isinstance(sql, ast.Name) and sql.id in {"sql", "SCHEMA"}:
            continue            # Store.query's own parameter, the constant schema script
        if isinstance(sql, ast.JoinedStr) and all(safe_part(part, integers) for part in sql.values):
            continue
        out.append((node.lineno, ast.unparse(sql)))
    return out


def safe_part(part: ast.expr, integers: set[str]) -> bool:
    if isinstance(part, ast.Constant):
        return True
    value = part.value
    if isinstance(value, ast.Name):
        return value.id == "marks" or value.id in integers
    # the busy timeout, an int formatted with :d (a str would raise)
    return ast.unparse(value) == "self.busy_timeout" and ast.unparse(part.format_spec or ast.Constant("")) \
        == "f'd'"


def test_every_sql_statement_is_parameterised():
    found = [(path.relative_to(ROOT), line, text) for path in sources("server") for line, text in built_sql(path)]
    assert not found, found
    store = (ROOT / "server" / "store.py").read_text()
    assert 'marks = ",".join("?" * len(skus))' in store              # `marks` is only placeholders
    assert "self.busy_timeout = busy_timeout_ms() if busy_timeout is None else int(busy_timeout)" in store


def test_the_sql_scan_would_see_user_data_in_sql(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(conn, order_id, rows):\n'
                   '    conn.execute(f"SELECT * FROM orders WHERE id = \'{order_id}\'")\n'
                   '    conn.execute("SELECT * FROM orders WHERE id = " + order_id)\n'
                   '    conn.execute("SELECT %s" % order_id)\n'
                   '    conn.execute(f"PRAGMA busy_timeout = {order_id}")\n'
                   '    for number, row in enumerate(rows):\n'
                   '        conn.execute(f"SAVEPOINT s_{number}")\n'           # an int: fine
                   '        conn.execute(f"SAVEPOINT s_{row}")\n')
    assert [line for line, _ in built_sql(bad)] == [2, 3, 4, 5, 8]


# ---- the token ------------------------------------------------------------------------------

def test_the_token_is_compared_in_constant_time():
    tree = ast.parse((ROOT / "server" / "app.py").read_text())
    [check] = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "require_token"]
    calls = {call_name(n) for n in ast.walk(check) if isinstance(n, ast.Call)}
    assert "hmac.compare_digest" in calls
    compares = [n for n in ast.walk(check) if isinstance(n, ast.Compare)
                and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in n.ops)]
    assert not compares, [ast.unparse(n) for n in compares]


def test_the_token_is_never_logged_stored_or_echoed(tmp_path):
    wrong = "Bearer not-" + TOKEN
    with LiveServer(tmp_path / "server", "--demo", "--token", TOKEN, "--workers", "2") as live:
        http = live.http
        good = {"authorization": f"Bearer {TOKEN}"}
        answers = [
            http.post("/orders", json=DEMO_ORDER),                                  # 401
            http.post("/orders", json=DEMO_ORDER, headers={"authorization": wrong}),  # 403
            http.post("/orders", json=DEMO_ORDER, headers=good),                    # 201
            http.put("/stock", json=[{"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": 80}], headers=good),
            http.put("/stock", json=[{"node": "NOWHERE", "sku": "JKT-RAIN-M", "on_hand": 1}], headers=good),
            http.post("/orders", content=b"{", headers={**good, "content-type": "application/json"}),
            http.get("/metrics"),
        ]
        assert [a.status_code for a in answers] == [401, 403, 201, 200, 422, 400, 200]
        for answer in answers:
            assert TOKEN not in answer.text
            assert TOKEN not in str(answer.headers)
        live.stop()
        output = live.log()
        assert "Try:" in output                                          # the server did talk
        assert TOKEN not in output
        db = Store(live.db)
        try:
            rows = db.query("SELECT actor, action, subject, detail FROM audit")
            stored = db.query("SELECT body, decision FROM orders")
        finally:
            db.close()
    assert rows and all(TOKEN not in str(row) for row in rows)
    assert all(TOKEN not in str(row) for row in stored)
    assert {r["actor"] for r in rows if r["action"] == "put stock" and r["actor"] != "demo"} == {"token"}


# ---- the audit log --------------------------------------------------------------------------

@pytest.fixture
def secured(tmp_path):
    path = tmp_path / "steve.db"
    store = Store(path)
    try:
        load_demo(store)
    finally:
        store.close()
    with TestClient(create_app(db=str(path), token=TOKEN)) as client:
        yield client, path


def audit_rows(path: Path, after: int = 0) -> list[dict]:
    store = Store(path)
    try:
        return store.query("SELECT id, at, actor, action, subject FROM audit WHERE id > ? ORDER BY id", (after,))
    finally:
        store.close()


def test_the_audit_log_says_who_changed_what_and_when(secured):
    client, path = secured
    start = audit_rows(path)[-1]["id"]          # the demo's own loading is audited as "demo"
    before = dt.datetime.now(dt.timezone.utc)
    auth = {"authorization": f"Bearer {TOKEN}"}
    ana = {**auth, "x-steve-actor": "ana"}
    network = client.get("/network").json()
    catalog = client.get("/catalog").json()
    candidate = client.get("/playbooks/active").json()["text"] + '\nrule "extra"\n  when order.total > $1000\n  then ship complete\n'
    steps = [
        client.put("/stock", json=[{"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": 70}], headers=ana),
        client.post("/stock/adjust", json={"event_id": "a-1", "node": "PA-DC", "sku": "JKT-RAIN-M", "delta": 2},
                    headers=auth),
        client.put("/network", json=network, headers=ana),
        client.put("/catalog", json=catalog, headers=auth),
        # the body's author is kept with the version; the audit names who sent it
        client.post("/playbooks", json={"text": candidate, "author": "mallory"}, headers=ana),
    ]
    assert [s.status_code for s in steps] == [200, 201, 200, 200, 201], [s.text for s in steps]
    version = steps[-1].json()["version"]
    more = [client.post(f"/playbooks/{version}/shadow", headers=auth),
            client.delete(f"/playbooks/{version}/shadow", headers=ana),
            client.post(f"/playbooks/{version}/activate", headers=ana),
            client.post("/orders", json=DEMO_ORDER, headers=auth)]
    assert [m.status_code for m in more] == [200, 200, 200, 201], [m.text for m in more]
    assert client.post(f"/orders/{DEMO_ORDER['id']}/cancel", headers=ana).status_code == 200
    rows = audit_rows(path, start)
    assert [(r["actor"], r["action"], r["subject"]) for r in rows] == [
        ("ana", "put stock", None),
        ("token", "adjust stock", "a-1"),
        ("ana", "put network", "network"),
        ("token", "put catalog", "catalog"),
        ("ana", "add playbook", version),
        ("token", "shadow playbook", version),
        ("ana", "stop shadow", version),
        ("ana", "activate playbook", version),
        ("ana", "cancel order", DEMO_ORDER["id"]),
    ]
    listed = {p["version"]: p for p in client.get("/playbooks").json()["playbooks"]}
    assert listed[version]["author"] == "mallory"
    after = dt.datetime.now(dt.timezone.utc)
    for row in rows:
        at = dt.datetime.fromisoformat(row["at"])
        assert at.tzinfo is not None and before - dt.timedelta(seconds=1) <= at <= after
    # refused writes leave no audit row
    assert client.put("/stock", json=[{"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": 1}]).status_code == 401
    assert client.put("/stock", json=[{"node": "NOWHERE", "sku": "JKT-RAIN-M", "on_hand": 1}],
                      headers=auth).status_code == 422
    assert len(audit_rows(path, start)) == len(rows)


# ---- JSON kinds ------------------------------------------------------------------------------

def test_values_of_the_wrong_kind_are_refused_not_coerced(secured):
    client, path = secured
    auth = {"authorization": f"Bearer {TOKEN}"}

    def refused(response, loc: str) -> None:
        assert response.status_code == 422, response.text
        assert loc in [d["loc"] for d in response.json()["details"]], response.json()

    line = {"sku": "JKT-RAIN-M", "qty": True}
    refused(client.post("/orders", json={**DEMO_ORDER, "lines": [line]}, headers=auth), "lines.0.qty")
    refused(client.put("/stock", json=[{"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": True}], headers=auth),
            "0.on_hand")
    refused(client.post("/stock/adjust", json={"event_id": "k-1", "node": "PA-DC", "sku": "JKT-RAIN-M",
                                               "delta": False}, headers=auth), "delta")
    refused(client.post("/route", json={**DEMO_ORDER, "created_at": 1_700_000_000}), "created_at")
    refused(client.post("/route", json={**DEMO_ORDER, "ship_to": {"country": "US", "zip": False}}), "ship_to.zip")
    network = client.get("/network").json()
    node = dict(network["nodes"][0])
    for field, value in (("ships", "no"), ("pickup", 0), ("eta", 0), ("capacity", True), ("lat", False)):
        changed = {**network, "nodes": [{**node, field: value}, *network["nodes"][1:]]}
        refused(client.put("/network", json=changed, headers=auth), f"nodes.0.{field}")
    # what stays accepted: numbers for numbers, a ZIP code written as a number, text dates
    assert client.post("/route", json={**DEMO_ORDER, "ship_to": {"country": "US", "zip": 2108}}).status_code == 200
    assert client.post("/route", json={**DEMO_ORDER, "created_at": "2026-11-25T10:00:00Z",
                                       "lines": [{"sku": "JKT-RAIN-M", "qty": 2}]}).status_code == 200
    store = Store(path)
    try:
        assert store.query("SELECT on_hand FROM stock WHERE node = 'PA-DC' AND sku = 'JKT-RAIN-M'")[0][
            "on_hand"] == 90
        assert store.query("SELECT COUNT(*) AS n FROM orders")[0]["n"] == 0
    finally:
        store.close()
