"""The exception tree of mano_core, documented in one place.

- :class:`ManoError`: base of everything raised here.
  - :class:`NotFound`: a VNF, VNFC, server, host or descriptor does not exist.
  - :class:`InvalidRequest`: a request that can never succeed as asked
    (scale beyond the VNFD's bounds, unknown aspect, bad descriptor).
  - :class:`CorruptRecord`: a stored record exists but cannot be read (written
    by a newer version, or damaged). Readers of many records skip it and log
    it; a lookup of that one record raises this.
  - :class:`VimError`: the VIM refused or failed an operation. Drivers
    translate their backend's exceptions into one of:
    - :class:`TemporaryVimError`: try again after ``retry_after`` seconds
      (overload, a conflicting task still running, a network blip).
    - :class:`PermanentVimError`: retrying will not help (the server's state
      forbids the action, an image or flavour is missing, a bad request).
      - :class:`QuotaExceeded`: the project's quota on the VIM is used up.
      - :class:`NoValidHost`: no host can take the server (capacity,
        placement hints, server group policy).
  - :class:`GrantRefused`: the NFVO (or the default granter) refused the
    resources an operation asked for; nothing was created.

Only the actuator decides retries and escalation; everything below it says
which kind of failure it saw and nothing more.
"""

from __future__ import annotations


class ManoError(Exception):
    """Base of every error raised by mano_core."""


class NotFound(ManoError):
    """The named object does not exist."""


class InvalidRequest(ManoError):
    """The request can never succeed as asked."""


class CorruptRecord(ManoError):
    """A stored record exists but cannot be decoded."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key
        """The Redis key of the record."""


class VimError(ManoError):
    """The VIM refused or failed an operation."""


class TemporaryVimError(VimError):
    """A VIM failure that may pass: retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentVimError(VimError):
    """A VIM failure that retrying will not fix."""


class QuotaExceeded(PermanentVimError):
    """The project's quota on the VIM does not allow the request."""


class NoValidHost(PermanentVimError):
    """No host of the VIM can take the server as asked."""


class GrantRefused(ManoError):
    """The resources an operation needs were not granted; ``reasons`` says why."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("grant refused: " + "; ".join(reasons))
        self.reasons = reasons
