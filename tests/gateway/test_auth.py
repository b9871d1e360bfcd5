"""Bearer tokens: none configured means open; invoke tokens invoke, admin tokens administer."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from dolmen.gateway.settings import Token
from tests.gateway.helpers import ACT, GatewayThread
from tests.gateway.test_errors import assert_error

ADMIN = "admin-secret-0123"
INVOKER = "invoke-secret-4567"


@pytest.fixture
def secured(start_gateway: Callable[..., GatewayThread]) -> Iterator[GatewayThread]:
    """A gateway with one admin and one invoke token."""
    yield start_gateway(tokens=(Token(ADMIN, "admin"), Token(INVOKER, "invoke")))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_missing_token_is_401_with_a_bearer_challenge(secured: GatewayThread) -> None:
    """Without a token every API call answers 401 and names how to send one."""
    with secured.client() as http:
        response = http.post(f"/v1/functions/{ACT}.double", json=[1])
        message = assert_error(response, 401, "unauthorized")
        assert "Authorization: Bearer" in message
        assert response.headers["www-authenticate"].startswith("Bearer")
        for path in ("/v1/functions", "/v1/executions", "/openapi.json", "/metrics", "/double/2", "/nowhere"):
            assert http.get(path).status_code == 401, path


def test_unknown_token_is_401(secured: GatewayThread) -> None:
    """A token the gateway does not know answers 401."""
    with secured.client(headers=bearer("not-a-known-token")) as http:
        assert_error(http.get("/v1/functions"), 401, "unauthorized")


def test_invoke_token_invokes_and_reads_but_does_not_administer(secured: GatewayThread) -> None:
    """An invoke token may invoke and read its execution; listing, cancelling, pausing and metrics are 403."""
    with secured.client(headers=bearer(INVOKER)) as http:
        response = http.post(f"/v1/functions/{ACT}.double?wait=30", json=[5])
        assert response.status_code == 200
        execution_id = response.json()["execution_id"]
        assert http.get(f"/v1/executions/{execution_id}").status_code == 200
        assert http.get(f"/v1/executions/{execution_id}/events").status_code == 200
        assert http.post("/double/3").json() == 6
        assert_error(http.get("/v1/executions"), 403, "forbidden")
        assert_error(http.post(f"/v1/executions/{execution_id}/cancel"), 403, "forbidden")
        for action in ("pause", "resume"):
            assert_error(http.post(f"/v1/executions/{execution_id}/{action}"), 403, "forbidden")
            assert_error(http.post(f"/v1/functions/{ACT}.double/{action}"), 403, "forbidden")
        assert_error(http.get("/metrics"), 403, "forbidden")


def test_admin_token_may_do_everything(secured: GatewayThread) -> None:
    """An admin token lists executions, reads metrics and invokes."""
    with secured.client(headers=bearer(ADMIN)) as http:
        assert http.post(f"/v1/functions/{ACT}.double", json=[1]).status_code == 202
        assert http.get("/v1/executions").status_code == 200
        assert http.get("/metrics").status_code == 200


def test_health_and_dashboard_shell_stay_open(secured: GatewayThread) -> None:
    """/healthz and the dashboard's static page need no token (the page asks for one)."""
    with secured.client() as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/").status_code == 200
        assert http.get("/static/dashboard.js").status_code == 200


def test_cors_is_off_by_default_and_on_for_configured_origins(
    http: httpx.Client, start_gateway: Callable[..., GatewayThread]
) -> None:
    """No CORS headers unless an origin is configured; then that origin, and only it, is allowed."""
    origin = {"Origin": "https://app.example"}
    assert "access-control-allow-origin" not in http.get("/v1/functions", headers=origin).headers
    server = start_gateway(cors_origins=("https://app.example",))
    with server.client() as cors_http:
        allowed = cors_http.get("/v1/functions", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = cors_http.get("/v1/functions", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        preflight = cors_http.options(
            f"/v1/functions/{ACT}.double",
            headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"},
        )
        assert preflight.status_code == 200
