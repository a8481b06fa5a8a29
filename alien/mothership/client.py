"""MothershipClient: the seed API's REST client, speaking both server dialects."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from alien import transport_security
from alien.errors import MothershipError, MothershipUnavailableError, NotFoundError, UnsupportedByServerError
from alien.logs import get_logger
from alien.mothership.dialects import DialectSpec, dialect_for
from alien.mothership.enums import Dialect, nearest_status, resolve_entity_type
from alien.mothership.transport import RestTransport
from alien.retry import RetryPolicy
from alien.version import __version__
from alien.wire import redact_url

if TYPE_CHECKING:
    from alien.settings import EntityDescription, MothershipSettings
    from alien.video import VideoConfig

logger = get_logger("alien.mothership")


class MothershipClient:
    """REST client for organization and entity registration (async context manager).

    The server dialect is detected on first use unless `settings.dialect` names it. It holds
    connection settings only: what is registered comes with the calls that register it.
    """

    def __init__(self, settings: MothershipSettings, *, on_request: Callable[[str, float], None] | None = None) -> None:
        """`on_request(method, seconds)` after every HTTP attempt (the metrics' REST latency)."""
        transport_security.check_mothership(settings)  # plain HTTP beyond loopback: refused before dialling
        self.settings = settings
        self._transport = RestTransport(
            settings.url,
            timeout_s=settings.request_timeout_s,
            retry=RetryPolicy(settings.request_attempts, settings.retry_backoff_s, settings.retry_backoff_max_s),
            ca_file=str(settings.http_tls_ca) if settings.http_tls_ca else None,
            on_request=on_request,
        )
        self._dialect: DialectSpec | None = dialect_for(settings.dialect) if settings.dialect != "auto" else None

    async def __aenter__(self) -> MothershipClient:
        await self._transport.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._transport.close()

    async def close(self) -> None:
        await self._transport.close()

    # --- dialect ---
    @property
    def dialect(self) -> Dialect | None:
        """The server's dialect once known (configured or detected)."""
        return self._dialect.name if self._dialect else None

    async def detect_dialect(self) -> Dialect:
        """Tell the dialects apart without configuration.

        docs/contract.md#telling-the-dialects-apart: v0.1.x serves /api/openapi.json without an envelope; v0.0.1 answers
        /health with the `{"success": true}` envelope.
        """
        if self._dialect is not None:
            return self._dialect.name
        spec = await self._transport.request("GET", "/api/openapi.json", accept_statuses=frozenset({404, 405}))
        if spec.status == 200 and isinstance(spec.body, dict) and "openapi" in spec.body:
            detected: Dialect = "v0.1"
        else:
            # An unhealthy v0.0.1 server (e.g. its NATS is down) answers 503, still enveloped.
            health = await self._transport.request(
                "GET", "/health", accept_statuses=frozenset({404, 500, 503}), retry_statuses=False
            )
            body = health.body
            if not (isinstance(body, dict) and isinstance(body.get("success"), bool) and "data" in body):
                raise MothershipError(
                    f"{redact_url(self.settings.url)} does not look like a mothership: no "
                    "/api/openapi.json and no enveloped /health; set ALIEN_DIALECT to force one",
                    status=health.status,
                )
            detected = "v0.0.1"
        self._dialect = dialect_for(detected)
        logger.info("mothership %s speaks dialect %s", redact_url(self.settings.url), detected)
        return detected

    async def health(self) -> dict[str, Any]:
        """The server's health answer, as detailed as the credentials allow."""
        spec = await self._spec()
        if spec.name == "v0.1":
            # /api/v1/health has the details but needs the admin scope; /health needs nothing
            response = await self._transport.request(
                "GET", "/api/v1/health", headers=self._auth_headers(spec), accept_statuses=frozenset({401, 403})
            )
            if response.status in (401, 403):
                response = await self._transport.request("GET", "/health")
        else:
            response = await self._transport.request("GET", "/health")
        body = response.body
        if isinstance(body, dict) and "success" in body:
            return dict(body.get("data") or {})
        return dict(body) if isinstance(body, dict) else {"status": str(body)}

    # --- organizations ---
    async def create_organization(self, name: str, org_type: str) -> dict[str, Any]:
        """Create organization `name` of `org_type` (ORG_NAME, ORG_TYPE); returns it with `org_id`."""
        spec = await self._spec()
        path, params = spec.organizations_path()
        body = spec.organization_body(name, org_type)
        return await self._call("POST", path, params, body, spec)  # type: ignore[no-any-return]

    async def list_organizations(self) -> list[dict[str, Any]]:
        spec = await self._spec()
        path, params = spec.organizations_path()
        result = await self._call("GET", path, params, None, spec)
        return _as_list(result)

    async def get_organization(self, org_id: str) -> dict[str, Any]:
        spec = await self._spec()
        path, params = spec.organization_path(org_id)
        result = await self._call("GET", path, params, None, spec)
        if isinstance(result, list):  # v0.0.1 answers a list even when filtered
            for org in result:
                if org.get("org_id") == org_id:
                    return dict(org)
            raise NotFoundError(f"organization {org_id} not found", status=404, method="GET", path=path)
        return dict(result)

    # --- entities ---
    async def create_entity(
        self, org_id: str, entity: EntityDescription, position: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create the described entity in `org_id`; returns it with `entity_id`."""
        spec = await self._spec()
        entity_type = resolve_entity_type(entity.entity_type, spec.name)
        name = entity.entity_name or f"alien-{entity.entity_type}"
        metadata = {"client": f"alien-v{__version__}", "alien_entity_type": entity.entity_type}
        body = spec.entity_body(name, entity_type, "active", position, metadata)
        video = entity.video_config
        if video is not None and spec.supports_video_config:
            body["video_config"] = video.body()
        path, params = spec.entities_path(org_id)
        return await self._call("POST", path, params, body, spec)  # type: ignore[no-any-return]

    async def get_entity(self, org_id: str, entity_id: str) -> dict[str, Any]:
        """The entity; NotFoundError when the server does not know it."""
        spec = await self._spec()
        path, params = spec.entity_path(org_id, entity_id)
        result = await self._call("GET", path, params, None, spec)
        if isinstance(result, list):
            for entity in result:
                if entity.get("entity_id") == entity_id:
                    return dict(entity)
            raise NotFoundError(f"entity {entity_id} not found", status=404, method="GET", path=path)
        return dict(result)

    async def list_entities(self, org_id: str) -> list[dict[str, Any]]:
        spec = await self._spec()
        path, params = spec.entities_path(org_id)
        return _as_list(await self._call("GET", path, params, None, spec))

    async def update_entity_status(self, org_id: str, entity_id: str, status: str) -> dict[str, Any]:
        """Store `status`, mapped to the nearest status the server accepts (see enums)."""
        spec = await self._spec()
        stored = nearest_status(status, spec.name)
        if stored != status:
            logger.debug("status %r is stored as %r on a %s server", status, stored, spec.name)
        path, params = spec.entity_path(org_id, entity_id)
        result = await self._call("PUT", path, params, {"status": stored}, spec)
        return dict(result) if isinstance(result, dict) else {"status": stored}

    async def update_video_config(self, org_id: str, entity_id: str, video: VideoConfig) -> dict[str, Any]:
        """Store the entity's video streams; UnsupportedByServerError on a dialect without them."""
        spec = await self._spec()
        if not spec.supports_video_config:
            raise UnsupportedByServerError(
                f"a {spec.name} server has no video_config on entities (v0.1.x has); nothing was sent"
            )
        path, params = spec.entity_path(org_id, entity_id)
        result = await self._call("PUT", path, params, {"video_config": video.body()}, spec)
        return dict(result) if isinstance(result, dict) else {}

    async def supports_video_config(self) -> bool:
        return (await self._spec()).supports_video_config

    async def delete_entity(self, org_id: str, entity_id: str) -> None:
        spec = await self._spec()
        path, params = spec.entity_path(org_id, entity_id)
        await self._call("DELETE", path, params, None, spec)

    # --- internals ---
    async def _spec(self) -> DialectSpec:
        if self._dialect is None:
            await self.detect_dialect()
        assert self._dialect is not None
        return self._dialect

    async def _call(self, method: str, path: str, params: dict[str, str], body: Any, spec: DialectSpec) -> Any:
        response = await self._transport.request(
            method, path, headers=self._auth_headers(spec), params=params or None, json_body=body
        )
        return spec.unwrap(response.body)

    def _auth_headers(self, spec: DialectSpec) -> dict[str, str]:
        api_key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        return spec.auth_headers(
            self.settings.bearer_token.get_secret_value(), api_key, bearer=self.settings.api_key_header == "bearer"
        )


def _as_list(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, list):
        return [dict(item) for item in result if isinstance(item, dict)]
    if isinstance(result, dict):
        return [result]
    return []


__all__ = ["MothershipClient", "MothershipError", "MothershipUnavailableError"]
