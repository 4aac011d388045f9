"""Errors a user may meet. Anything raised as PAError is printed without a traceback."""

from __future__ import annotations


class PAError(Exception):
    """An expected failure: the message says what went wrong, ``hint`` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(PAError):
    """Bad input from the user (exit code 2, like click's usage errors)."""

    exit_code = 2


class NotFound(UsageError):
    """A repo, session or ref named by the user does not exist."""


class Conflict(PAError):
    """The operation is not possible in the current state (e.g. session still running)."""
