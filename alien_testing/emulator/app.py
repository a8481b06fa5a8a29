"""The aiohttp application: one dialect's routes behind request recording and fault injection."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web

from alien_testing.emulator import legacy_api, v01_api
from alien_testing.emulator.context import ApiContext
from alien_testing.emulator.records import Recorder, RequestRecord

# Fault injection spares liveness/health and the dialect signal so detection still works.
_FAULT_EXEMPT = frozenset({"/health", "/api/v1/health", "/api/openapi.json"})
_LEGACY_CODES = {
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Faults:
    """Thread-safe switches set from the test thread, read on the emulator loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining = 0
        self._status = 503
        self._unavailable = False

    def fail_next(self, n: int, status: int) -> None:
        with self._lock:
            self._remaining, self._status = n, status

    def set_unavailable(self, flag: bool) -> None:
        with self._lock:
            self._unavailable = flag

    def take(self, path: str) -> int | None:
        """The status to inject for this request, consuming one queued failure, or None."""
        with self._lock:
            if self._unavailable:
                return 503
            if self._remaining > 0 and path not in _FAULT_EXEMPT:
                self._remaining -= 1
                return self._status
            return None


def fault_response(dialect: str, status: int) -> web.Response:
    """An injected failure in the dialect's own error shape (docs/contract.md#rest-dialects)."""
    detail = f"injected fault: {HTTPStatus(status).phrase}"
    if dialect == "v0.0.1":
        return legacy_api.error(status, _LEGACY_CODES.get(status, "INJECTED_FAULT"), detail)
    return v01_api.plain_problem(status, detail)


def build_app(ctx: ApiContext, recorder: Recorder, faults: Faults) -> web.Application:
    api: _Handler = legacy_api.LegacyApi(ctx).handle if ctx.dialect == "v0.0.1" else v01_api.V01Api(ctx).handle

    @web.middleware
    async def record(request: web.Request, handler: _Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            recorder.add_request(
                RequestRecord(
                    method=request.method,
                    path=request.path,
                    query=dict(request.query),
                    status=status,
                    header_names=tuple(request.headers.keys()),
                )
            )

    @web.middleware
    async def inject(request: web.Request, handler: _Handler) -> web.StreamResponse:
        status = faults.take(request.path)
        if status is not None:
            return fault_response(ctx.dialect, status)
        return await handler(request)

    # 1 MiB request bodies, like the v0.1 server's MaxBodySize.
    app = web.Application(middlewares=[record, inject], client_max_size=1 << 20)
    app.router.add_route("*", "/{tail:.*}", api)
    return app
