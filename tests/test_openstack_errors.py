"""OpenStack's failures become the right retry decision (mano_core.vim.openstack.errors).

The exceptions are openstacksdk's own, made by its own response handling
(``raise_from_response``) from real HTTP responses, or raised by a real
connection to a port nothing listens on.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import keystoneauth1.exceptions as ksa
import openstack
import pytest
import requests
from openstack import exceptions as sdk

from mano_core.errors import (
    ManoError,
    NotFound,
    NoValidHost,
    PermanentVimError,
    QuotaExceeded,
    TemporaryVimError,
)
from mano_core.vim.openstack.errors import translate


def sdk_error(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Exception:
    response = requests.Response()
    response.status_code = status
    response.headers.update({"content-type": "application/json", **(headers or {})})
    response._content = json.dumps(body).encode()
    response.url = "http://127.0.0.1:18774/v2.1/servers"
    try:
        sdk.raise_from_response(response)
    except sdk.SDKException as exc:
        return exc
    raise AssertionError("raise_from_response raised nothing")


def nova(status: int, message: str, **headers: str) -> Exception:
    return sdk_error(status, {"error": {"code": status, "message": message}}, headers)


def neutron(status: int, kind: str, message: str) -> Exception:
    return sdk_error(status, {"NeutronError": {"type": kind, "message": message, "detail": ""}})


def outcome(exc: Exception) -> ManoError:
    error = translate(exc, "test")
    assert error is not None
    return error


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (nova(404, "Instance x could not be found."), NotFound),
        (
            nova(403, "Quota exceeded for instances: Requested 1, but already used 3 of 3"),
            QuotaExceeded,
        ),
        (nova(413, "Quota exceeded for cores"), QuotaExceeded),
        (neutron(409, "OverQuota", "Quota exceeded for resources: ['port']."), QuotaExceeded),
        (nova(400, "No valid host was found. There are not enough hosts available."), NoValidHost),
        (nova(400, "Invalid flavorRef provided."), PermanentVimError),
        (
            nova(403, "Policy doesn't allow os_compute_api:os-migrate-server to be performed."),
            PermanentVimError,
        ),
        (nova(401, "The request you have made requires authentication."), PermanentVimError),
        (
            nova(409, "Cannot 'reboot' instance x while it is in vm_state stopped"),
            PermanentVimError,
        ),
        (
            neutron(409, "NetworkInUse", "Unable to complete operation on network x."),
            PermanentVimError,
        ),
        (
            nova(409, "Cannot 'resize' instance x while it is in task_state rebooting"),
            TemporaryVimError,
        ),
        (nova(429, "Rate limit exceeded"), TemporaryVimError),
        (nova(500, "Unexpected API Error."), TemporaryVimError),
        (nova(503, "Service Unavailable"), TemporaryVimError),
        (nova(501, "Not implemented by this hypervisor"), PermanentVimError),
    ],
)
def test_http_failures_map_onto_the_vim_errors(exc: Exception, kind: type[ManoError]) -> None:
    error = outcome(exc)
    assert type(error) is kind
    assert "test" in str(error)


def test_temporary_errors_wait_as_long_as_the_cloud_asks() -> None:
    assert outcome(nova(429, "slow down", **{"Retry-After": "17"})).retry_after == 17.0  # type: ignore[attr-defined]
    assert outcome(nova(503, "busy")).retry_after == 10.0  # type: ignore[attr-defined]
    assert outcome(nova(409, "in task_state migrating")).retry_after == 5.0  # type: ignore[attr-defined]


def test_a_cloud_nothing_listens_on_is_a_temporary_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = openstack.connect(
        auth_url=f"http://127.0.0.1:{port}/v3",
        username="u",
        password="p",
        project_name="p",
        user_domain_name="Default",
        project_domain_name="Default",
        api_timeout=5,
    )
    with pytest.raises(ksa.ConnectionError) as raised:
        list(conn.compute.servers())
    error = outcome(raised.value)
    assert isinstance(error, TemporaryVimError)


def test_an_unknown_cloud_is_a_permanent_error() -> None:
    with pytest.raises(sdk.ConfigException) as raised:
        openstack.connect(cloud="no-such-cloud-7d1f2a")
    assert isinstance(outcome(raised.value), PermanentVimError)


def test_other_exceptions_are_left_alone() -> None:
    assert translate(KeyError("x"), "test") is None
