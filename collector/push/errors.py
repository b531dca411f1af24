"""What a push receiver answers when a request cannot be taken."""

from __future__ import annotations


class PushError(Exception):
    """A pushed request refused: its HTTP status and why (the server renders it)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
