"""HTTP transport for the mothership REST API: timeouts, retries with backoff, typed errors.

Retries (jittered exponential backoff) happen on connection errors, timeouts, 5xx and 429 only;
any other 4xx is final. Both error shapes of docs/contract.md#rest-dialects are parsed: the v0.0.1 envelope
`{"success": false, "error": {"code", "message"}}` and v0.1.x RFC 9457 problem+json
`{status, title, detail, errors?}`. Headers (which carry the credentials) are never logged.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from alien.errors import (
    AuthenticationError,
    CertificateError,
    MothershipError,
    MothershipProtocolError,
    MothershipUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    RequestRejectedError,
    ServerError,
)
from alien.logs import get_logger
from alien.retry import POST_RETRY_STATUSES, RETRY_STATUSES, RetryPolicy
from alien.wire import redact_url, url_without_credentials

logger = get_logger("alien.mothership")


@dataclass(frozen=True)
class Response:
    status: int
    body: Any  # parsed JSON, or the text when the body is not JSON
    content_type: str


class RestTransport:
    """One aiohttp session; `request()` returns a successful Response or raises a typed error."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        retry: RetryPolicy,
        ca_file: str | None = None,
        on_request: Callable[[str, float], None] | None = None,
    ) -> None:
        """`on_request(method, seconds)`: after every attempt, answered or not (the metrics' REST latency)."""
        self.base_url = base_url.rstrip("/")
        self._on_request = on_request
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retry = retry
        self._ssl: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        json_body: Any = None,
        retry: bool = True,
        accept_statuses: frozenset[int] = frozenset(),
        retry_statuses: bool = True,
    ) -> Response:
        """Send a request; statuses in `accept_statuses` are returned instead of raised.

        With `retry_statuses=False` only connection errors and timeouts are retried.
        """
        if self._session is None:
            await self.open()
        assert self._session is not None
        attempts = self._retry.attempts if retry else 1
        last_error: MothershipError | None = None
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            started = time.monotonic()
            try:
                async with self._session.request(
                    method, self.base_url + path, headers=headers, params=params, json=json_body, ssl=self._ssl
                ) as resp:
                    response = await _read(resp)
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except aiohttp.ClientConnectorCertificateError as exc:
                raise CertificateError(
                    f"the certificate of {redact_url(self.base_url)} does not verify "
                    f"({exc.certificate_error}); set ALIEN_HTTP_TLS_CA to the CA that signed it",
                    method=method,
                    path=path,
                ) from None
            except aiohttp.ClientResponseError as exc:
                # Raised before any response exists: the answer did not parse as HTTP at all.
                raise MothershipProtocolError(_not_http(self.base_url, exc.message)) from None
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                reason = f"cannot reach {redact_url(self.base_url)} ({exc.__class__.__name__}: {exc or 'timed out'})"
                if isinstance(exc, aiohttp.ServerDisconnectedError) and self.base_url.startswith("http://"):
                    # What a TLS listener does with plain HTTP; also a server restarting, so still retried.
                    reason += f"; if it is an HTTPS server, use https://{redact_url(self.base_url).split('://', 1)[1]}"
                last_error = MothershipUnavailableError(reason, method=method, path=path)
                # A POST that may have reached the server is not sent again: it could create a
                # second organization or entity. Only "could not connect" proves nothing was sent.
                if method == "POST" and not isinstance(exc, aiohttp.ClientConnectorError):
                    raise last_error from None
            else:
                if response.status < 400 or response.status in accept_statuses:
                    return response
                last_error = _error_for(response, method, path)
                retryable = POST_RETRY_STATUSES if method == "POST" else RETRY_STATUSES
                if not retry_statuses or response.status not in retryable:
                    raise last_error
            finally:
                if self._on_request is not None:
                    self._on_request(method, time.monotonic() - started)
            if attempt < attempts:
                delay = self._retry.delay(attempt, retry_after)
                # DEBUG: the caller says each failed attempt once (e.g. the registration loop at WARNING)
                logger.debug("%s; retry %d/%d in %.2fs", last_error, attempt, attempts - 1, delay)
                await asyncio.sleep(delay)
        assert last_error is not None
        raise last_error


def _not_http(base_url: str, parser_message: str) -> str:
    """One line on what answered instead of HTTP; the answer's bytes are not echoed."""
    shown = redact_url(base_url)
    if "INFO {" in parser_message and "server_id" in parser_message:
        host = url_without_credentials(base_url, "http").netloc
        return (
            f"MOTHERSHIP_URL {shown} answered with the NATS protocol, not HTTP: that is a NATS port; set "
            f"MOTHERSHIP_URL to the mothership's HTTP address and NATS_URL to nats://{host}"
        )
    # A TLS record (alert 0x15, handshake 0x16, version 0x03..): an HTTPS server spoken to over http://
    if re.search(r"b'\\x1[56]\\x03", parser_message) and base_url.startswith("http://"):
        return (
            f"MOTHERSHIP_URL {shown} answered with TLS, not plain HTTP; use "
            f"https://{shown.split('://', 1)[1]} (ALIEN_HTTP_TLS_CA for a private CA)"
        )
    return f"MOTHERSHIP_URL {shown} did not answer with HTTP; check that it is the mothership's HTTP address"


async def _read(resp: aiohttp.ClientResponse) -> Response:
    text = await resp.text()
    content_type = resp.headers.get("Content-Type", "")
    try:
        body: Any = json.loads(text) if text else None
    except json.JSONDecodeError:
        body = text
    return Response(status=resp.status, body=body, content_type=content_type)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _error_for(response: Response, method: str, path: str) -> MothershipError:
    code, message = parse_error_body(response.body)
    cls: type[MothershipError]
    if response.status == 401:
        cls = AuthenticationError
    elif response.status == 403:
        cls = PermissionDeniedError
    elif response.status == 404:
        cls = NotFoundError
    elif response.status >= 500:
        cls = ServerError
    else:
        cls = RequestRejectedError
    return cls(message, status=response.status, code=code, method=method, path=path)


def parse_error_body(body: Any) -> tuple[str | None, str]:
    """(code, message) from either error shape of the contract, or the raw text."""
    if isinstance(body, dict):
        error = body.get("error")
        if body.get("success") is False and isinstance(error, dict):  # v0.0.1 envelope
            return _str(error.get("code")), _str(error.get("message")) or "no message"
        if "title" in body or "detail" in body:  # v0.1.x problem+json
            message = _str(body.get("detail")) or _str(body.get("title")) or "no detail"
            details = body.get("errors")
            if isinstance(details, list) and details:
                message += " (" + "; ".join(_problem_detail(d) for d in details[:5]) + ")"
            return _str(body.get("title")), message
        return None, json.dumps(body)[:500]
    text = str(body or "").strip()
    return None, text[:500] or "empty response"


def _problem_detail(item: Any) -> str:
    if isinstance(item, dict):
        where = item.get("location") or item.get("field") or ""
        what = item.get("message") or item.get("detail") or ""
        return f"{where}: {what}" if where else str(what)
    return str(item)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
