"""The HTTP service: thin Starlette endpoints over server.service.

Each endpoint parses its body with pydantic, calls the service and returns
JSON. One exception-handler map turns every error into a 4xx (or 503) JSON
body `{"error": ..., "details": [{"loc": ..., "msg": ...}]}`.

Configuration comes from the environment so that every uvicorn worker gets
the same: STEVE_DB (database file), STEVE_TOKEN (bearer token for writes;
unset = open), STEVE_MAX_BODY (bytes, default 1 MB), STEVE_MATCHER (compiled, python or
durable: which rule matcher routes; the same decisions either way).
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import time
from contextlib import asynccontextmanager

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from engine import limits
from engine.models import Catalog, Network
from engine.router import validation_problems
from . import schemas
from .metrics import Metrics
from .service import NotLoaded, PlaybookRejected, Service
from .store import Conflict, NotFound, Store, StoreError

DEFAULT_MAX_BODY = 1_000_000


class AuthError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class BodyTooLarge(Exception):
    pass


class BadJSON(Exception):
    pass


# ---- request helpers -------------------------------------------------------------------

MAX_JSON_DEPTH = 32


async def body_json(request: Request):
    raw = await request.body()
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadJSON(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadJSON(f"the body nests arrays or objects more than {MAX_JSON_DEPTH} deep") from None
    if _depth(document) > MAX_JSON_DEPTH:
        # hashing or validating a document this deep could exhaust the stack (a 500)
        raise BadJSON(f"the body nests arrays or objects more than {MAX_JSON_DEPTH} deep")
    return document


def _depth(document) -> int:
    """How deeply arrays and objects nest (without recursion)."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, level = pending.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, level)
        if level > MAX_JSON_DEPTH:
            break
        pending.extend((child, level + 1) for child in value)
    return deepest


def actor(request: Request) -> str | None:
    """Who made a write (for the audit log), never the token itself."""
    return request.headers.get("x-steve-actor") or ("token" if request.app.state.token else None)


def require_token(request: Request) -> None:
    token = request.app.state.token
    if not token:
        return
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise AuthError(401, "this endpoint needs Authorization: Bearer <token>")
    if not hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        raise AuthError(403, "the token is not valid")


def service(request: Request) -> Service:
    return request.app.state.service


class _JSON(JSONResponse):
    """JSONResponse written by orjson (a 13 kB decision: ~10 µs instead of
    ~80 µs); what orjson cannot write (an integer past 64 bits) falls back
    to the standard encoder."""

    def render(self, content) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


def ok(body, status: int = 200) -> JSONResponse:
    return _JSON(body, status_code=status)


# ---- endpoints --------------------------------------------------------------------------

async def health(request: Request):
    return ok(await run_in_threadpool(service(request).health))


async def route_order(request: Request):
    body = await body_json(request)
    started = time.perf_counter()
    decision = await run_in_threadpool(service(request).route, body)
    request.app.state.metrics.observe_route(time.perf_counter() - started)
    document = decision.to_json()
    return ok(_with_errors(document), 422 if decision.status == "error" else 200)


async def place_order(request: Request):
    require_token(request)
    body = await body_json(request)
    started = time.perf_counter()
    document, created = await run_in_threadpool(service(request).place, body)
    request.app.state.metrics.observe_route(time.perf_counter() - started)
    if document.get("status") == "error":
        return ok(_with_errors(document), 422)
    return ok(document, 201 if created else 200)


async def get_order(request: Request):
    return ok(await run_in_threadpool(service(request).order, request.path_params["order_id"]))


async def cancel_order(request: Request):
    require_token(request)
    return ok(await run_in_threadpool(service(request).cancel, request.path_params["order_id"], actor(request)))


async def ship_order(request: Request):
    require_token(request)
    return ok(await run_in_threadpool(service(request).ship, request.path_params["order_id"], actor(request)))


async def availability(request: Request):
    return ok(await run_in_threadpool(service(request).availability, request.path_params["sku"]))


async def put_stock(request: Request):
    require_token(request)
    rows = TypeAdapter(list[schemas.StockCount]).validate_python(await body_json(request))
    result = await run_in_threadpool(service(request).put_stock, [r.model_dump() for r in rows], actor(request))
    return ok(result)


async def adjust_stock(request: Request):
    require_token(request)
    body = await body_json(request)
    adjustment = schemas.StockAdjustment.model_validate(body)
    deltas = [(a.node, a.sku, a.delta) for a in adjustment.all()]
    result, duplicate = await run_in_threadpool(service(request).adjust_stock, adjustment.event_id, body,
                                                deltas, actor(request))
    return ok(dict(result, duplicate=duplicate), 200 if duplicate else 201)


async def network(request: Request):
    if request.method == "GET":
        return ok(await run_in_threadpool(service(request).get_document, "network"))
    require_token(request)
    parsed = Network.model_validate(await body_json(request))
    return ok(await run_in_threadpool(service(request).put_network, parsed, actor(request)))


async def catalog(request: Request):
    if request.method == "GET":
        return ok(await run_in_threadpool(service(request).get_document, "catalog"))
    require_token(request)
    parsed = Catalog.model_validate(await body_json(request))
    return ok(await run_in_threadpool(service(request).put_catalog, parsed, actor(request)))


async def playbook_text(request: Request) -> schemas.PlaybookIn:
    if request.headers.get("content-type", "").startswith("text/plain"):
        raw = await request.body()
        try:
            return schemas.PlaybookIn(text=raw.decode("utf-8"), author=request.headers.get("x-steve-actor"))
        except UnicodeDecodeError:
            raise BadJSON("the playbook is not UTF-8 text") from None
    return schemas.PlaybookIn.model_validate(await body_json(request))


async def check_playbook(request: Request):
    playbook = await playbook_text(request)
    version, diagnostics = await run_in_threadpool(service(request).check_playbook, playbook.text)
    failed = any(d.severity == "error" for d in diagnostics)
    return ok({"version": version, "ok": not failed, "diagnostics": [_diagnostic(d) for d in diagnostics]},
              422 if failed else 200)


async def add_playbook(request: Request):
    require_token(request)
    playbook = await playbook_text(request)
    # the version keeps the author it was sent with; the audit log names who sent it
    result, created = await run_in_threadpool(service(request).add_playbook, playbook.text,
                                              playbook.author or actor(request), actor(request))
    result["diagnostics"] = [_diagnostic(d) for d in result["diagnostics"]]
    return ok(result, 201 if created else 200)


async def list_playbooks(request: Request):
    if request.method == "POST":
        return await add_playbook(request)
    return ok({"playbooks": await run_in_threadpool(service(request).playbooks)})


async def active_playbook(request: Request):
    return ok(await run_in_threadpool(service(request).active_playbook))


async def activate_playbook(request: Request):
    require_token(request)
    return ok(await run_in_threadpool(service(request).activate, request.path_params["version"], actor(request)))


async def shadow_playbook(request: Request):
    version = request.path_params["version"]
    if request.method == "GET":
        return ok(await run_in_threadpool(service(request).shadow_report, version))
    require_token(request)
    on = request.method == "POST"
    return ok(await run_in_threadpool(service(request).shadow, version, on, actor(request)))


async def simulate(request: Request):
    run = schemas.SimulateIn.model_validate(await body_json(request))
    return ok(await run_in_threadpool(service(request).simulate, run.orders, run.playbook, run.version,
                                      run.against, run.with_nodes, run.without_nodes, run.now))


async def metrics(request: Request):
    text = await run_in_threadpool(request.app.state.metrics.render, service(request))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def openapi(request: Request):
    return ok(schemas.openapi_document())


def _diagnostic(d) -> dict:
    return {"line": d.line, "column": d.column, "severity": d.severity, "message": d.message}


def _with_errors(document: dict) -> dict:
    if document.get("status") != "error":
        return document
    return {"error": "the order cannot be routed as sent", "details": list(document.get("errors", ())),
            **document}


# ---- errors -------------------------------------------------------------------------------

def _error(status: int, error: str, details=None, headers=None) -> JSONResponse:
    body = {"error": error, "details": details or []}
    return JSONResponse(body, status_code=status, headers=headers)


async def on_validation(request: Request, exc: ValidationError):
    return _error(422, "invalid request body", validation_problems(exc, whole="body"))


async def on_store_error(request: Request, exc: StoreError):
    return _error(exc.status, str(exc), exc.details,
                  headers={"Retry-After": "1"} if exc.status == 503 else None)


async def on_bad_json(request: Request, exc: BadJSON):
    return _error(400, str(exc), [{"loc": "body", "msg": str(exc)}])


async def on_auth(request: Request, exc: AuthError):
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return _error(exc.status, str(exc), headers=headers)


async def on_too_large(request: Request, exc: BodyTooLarge):
    limit = request.app.state.max_body
    return _error(413, f"the body is larger than {limit:,} bytes", [{"loc": "body", "msg": "too large"}])


async def on_rejected(request: Request, exc: PlaybookRejected):
    return JSONResponse({"error": "the playbook does not check clean", "version": exc.version,
                         "details": [{"loc": f"line {d.line}, column {d.column}", "msg": d.message}
                                     for d in exc.diagnostics if d.severity == "error"],
                         "diagnostics": [_diagnostic(d) for d in exc.diagnostics]}, status_code=422)


async def on_sqlite(request: Request, exc: sqlite3.OperationalError):
    if "locked" in str(exc) or "busy" in str(exc):
        return _error(503, "the database is busy; retry shortly", headers={"Retry-After": "1"})
    raise exc


async def on_http(request: Request, exc: HTTPException):
    return _error(exc.status_code, exc.detail or "error", headers=exc.headers)     # 405 keeps its Allow


EXCEPTION_HANDLERS = {
    ValidationError: on_validation,
    StoreError: on_store_error,
    BadJSON: on_bad_json,
    AuthError: on_auth,
    BodyTooLarge: on_too_large,
    PlaybookRejected: on_rejected,
    sqlite3.OperationalError: on_sqlite,
    HTTPException: on_http,
}


# ---- the app ---------------------------------------------------------------------------------

class BodyLimit:
    """Refuse bodies over the limit before they are read whole (413)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                response = _error(413, f"the body is larger than {self.limit:,} bytes",
                                  [{"loc": "body", "msg": "too large"}])
                return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited, send)


ROUTES = [
    Route("/health", health, methods=["GET"]),
    Route("/route", route_order, methods=["POST"]),
    Route("/orders", place_order, methods=["POST"]),
    # an order id may hold "/" (sent percent-encoded): the cancel and ship routes come first,
    # so that /orders/X/cancel is never read as the order "X/cancel" for their methods
    Route("/orders/{order_id:path}/cancel", cancel_order, methods=["POST"]),
    Route("/orders/{order_id:path}/ship", ship_order, methods=["POST"]),
    Route("/orders/{order_id:path}", get_order, methods=["GET"]),
    Route("/availability/{sku}", availability, methods=["GET"]),
    Route("/stock", put_stock, methods=["PUT"]),
    Route("/stock/adjust", adjust_stock, methods=["POST"]),
    Route("/network", network, methods=["GET", "PUT"]),
    Route("/catalog", catalog, methods=["GET", "PUT"]),
    Route("/playbooks/check", check_playbook, methods=["POST"]),
    Route("/playbooks/active", active_playbook, methods=["GET"]),
    Route("/playbooks", list_playbooks, methods=["GET", "POST"]),
    Route("/playbooks/{version}/activate", activate_playbook, methods=["POST"]),
    Route("/playbooks/{version}/shadow", shadow_playbook, methods=["GET", "POST", "DELETE"]),
    Route("/simulate", simulate, methods=["POST"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]


def route_time_limit() -> float | None:
    """Seconds one order may take to decide, from STEVE_ROUTE_TIME_LIMIT_MS
    (None when unset: the engine's default, engine.limits.TIME_LIMIT)."""
    raw = os.environ.get("STEVE_ROUTE_TIME_LIMIT_MS", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"STEVE_ROUTE_TIME_LIMIT_MS must be a positive whole number of milliseconds, "
                         f"not {raw!r}")
    return int(raw) / 1000


def create_app(db: str | None = None, token: str | None = None, max_body: int | None = None) -> Starlette:
    if route_time_limit() is not None:      # one process, one server: a process-wide setting
        limits.configure(route_time_limit())
    db = db or os.environ.get("STEVE_DB", "steve.db")
    token = token if token is not None else os.environ.get("STEVE_TOKEN") or None
    max_body = max_body or int(os.environ.get("STEVE_MAX_BODY", DEFAULT_MAX_BODY))

    @asynccontextmanager
    async def lifespan(app):
        store = Store(db)
        app.state.service = Service(store, os.environ.get("STEVE_MATCHER", "compiled"),
                                    early_routing=os.environ.get("STEVE_EARLY_ROUTING", "1") != "0")
        app.state.service.on_early = app.state.metrics.count_early
        await run_in_threadpool(app.state.service.warm)
        try:
            yield
        finally:
            store.close()

    app = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS, lifespan=lifespan)
    app.state.token = token
    app.state.max_body = max_body
    app.state.metrics = Metrics()
    app.add_middleware(BodyLimit, limit=max_body)
    return app


__all__ = ["create_app", "NotLoaded", "NotFound", "Conflict"]
