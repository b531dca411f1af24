"""openstacksdk's exceptions, translated into the VIM errors of :mod:`mano_core.errors`.

This is the one place where an OpenStack failure becomes a retry decision.
Every SDK call of :class:`~mano_core.vim.openstack.OpenStackVim` goes through
:func:`translate`; nothing else in the driver looks at SDK exceptions.

=========================================  ==========================================
what OpenStack said                        what the driver raises
=========================================  ==========================================
404 Not Found                              :class:`~mano_core.errors.NotFound`
403 or 413 with "quota" in the message,    :class:`~mano_core.errors.QuotaExceeded`
Neutron ``OverQuota`` (409)                (permanent: the project's quota is used up)
400 "No valid host"                        :class:`~mano_core.errors.NoValidHost`
400 Bad Request, 401, 403 Forbidden,       :class:`~mano_core.errors.PermanentVimError`
405, 406, 413 (no quota), 501, any other   (retrying the same call will not help)
4xx
409 while the server is in a ``vm_state``  :class:`~mano_core.errors.PermanentVimError`
that forbids the action ("Cannot 'reboot'  (a soft reboot of a stopped server; the
instance ... while it is in vm_state       state will not change by waiting)
stopped"); Neutron ``*InUse`` (a network,
subnet or port still in use)
409 Conflict otherwise (a ``task_state``   :class:`~mano_core.errors.TemporaryVimError`
under way, a concurrent update)            after 5 s
429 Too Many Requests                      temporary, after its ``Retry-After`` (else 10 s)
500, 502, 503, 504                         temporary, after ``Retry-After`` (else 10 s)
connection refused, reset, timed out       temporary, after 5 s
(keystoneauth ``ConnectionError``), a
service whose version discovery failed
an endpoint missing from the catalogue     permanent (the cloud has no such service)
any other ``SDKException``                 permanent, with its message
=========================================  ==========================================

Exceptions that are not OpenStack's (a bug in the driver) are left alone.
"""

from __future__ import annotations

import json
from typing import Any

import keystoneauth1.exceptions as ksa
from openstack import exceptions as sdk

from mano_core.errors import (
    ManoError,
    NotFound,
    NoValidHost,
    PermanentVimError,
    QuotaExceeded,
    TemporaryVimError,
)

CONFLICT_RETRY_S = 5.0
"""A task under way on the server usually ends within seconds."""
OVERLOAD_RETRY_S = 10.0
"""Wait for an overloaded or restarting API, when it does not say how long."""
CONNECTION_RETRY_S = 5.0

_IN_USE = ("InUse", "NetworkInUse", "SubnetInUse", "PortInUse", "IpAddressInUse")


def translate(exc: BaseException, what: str) -> ManoError | None:
    """The VIM error for ``exc`` raised while doing ``what``; None: not OpenStack's."""
    if isinstance(exc, sdk.HttpException):
        return _http(exc.status_code, exc.response, _details(exc), what)
    if isinstance(exc, ksa.HttpError):
        return _http(exc.http_status, exc.response, str(exc), what)
    if isinstance(exc, ksa.ConnectionError | ksa.RetriableConnectionFailure):
        return TemporaryVimError(
            f"{what}: cannot reach the cloud ({exc})", retry_after=CONNECTION_RETRY_S
        )
    if isinstance(exc, sdk.EndpointNotFound | ksa.EndpointNotFound):
        return PermanentVimError(f"{what}: the cloud offers no such service ({exc})")
    if isinstance(exc, ksa.DiscoveryFailure):
        # Raised when a service's version document cannot be read, as while it restarts.
        return TemporaryVimError(f"{what}: {exc}", retry_after=CONNECTION_RETRY_S)
    if isinstance(exc, sdk.SDKException | ksa.ClientException):
        return PermanentVimError(f"{what}: {exc}")
    return None


def _http(status: int | None, response: Any, details: str, what: str) -> ManoError:
    message = f"{what}: {details}" if details else what
    lowered = details.lower()
    kind = _neutron_type(response)
    if status == 404:
        return NotFound(message)
    if kind == "OverQuota" or (status in (403, 413) and "quota" in lowered):
        return QuotaExceeded(message)
    if status == 429 or (status is not None and status >= 500 and status != 501):
        return TemporaryVimError(message, retry_after=_retry_after(response, OVERLOAD_RETRY_S))
    if status == 409:
        if kind in _IN_USE or "vm_state" in lowered:
            return PermanentVimError(message)
        return TemporaryVimError(message, retry_after=_retry_after(response, CONFLICT_RETRY_S))
    if status == 400 and "no valid host" in lowered:
        return NoValidHost(message)
    return PermanentVimError(message)


def _details(exc: sdk.HttpException) -> str:
    return str(exc.details or exc.message or "").strip()


def _neutron_type(response: Any) -> str | None:
    """The ``type`` of a Neutron error body (``{"NeutronError": {"type": ...}}``)."""
    try:
        body = json.loads(response.text)
    except (AttributeError, TypeError, ValueError):
        return None
    error = body.get("NeutronError") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def _retry_after(response: Any, default: float) -> float:
    """The response's ``Retry-After`` in seconds (the delta form), else ``default``."""
    try:
        value = float(response.headers["Retry-After"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return default
    return value if value > 0 else default
