"""What a query can refuse: the caller's input (``BadQueryError``) or a missing thing
(``NotFoundError``). The service maps them to 400 and 404 problem details; the command line
prints their message."""

from __future__ import annotations


class BadQueryError(ValueError):
    """A parameter that cannot be answered; ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.detail = message


class NotFoundError(LookupError):
    """The thing asked for is not in the store (yet)."""


def no_session(session_id: str) -> NotFoundError:
    return NotFoundError(f"no session {session_id!r} in the store")
