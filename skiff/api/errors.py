"""skiff's exceptions as the Engine API's status codes: the one table.

Docker's daemon answers an error with a status code and ``{"message": "..."}``; its client prints
the message. The code is chosen by the exception's type, the first row that matches winning, so a
subclass maps as its family does unless a row above names it.
"""

from __future__ import annotations

from skiff.errors import Conflict, InvalidArgument, NotFound, SkiffError, UsageError

INTERNAL = 500


class BadRequest(InvalidArgument):
    """A request the API cannot use: malformed JSON, a parameter of the wrong type (400)."""


class RouteNotFound(NotFound):
    """No endpoint at this path (Docker: 404 ``page not found``)."""

    def __init__(self) -> None:
        super().__init__("page not found")


class MethodNotAllowed(SkiffError):
    """An endpoint's path with a method it does not take (405)."""

    def __init__(self) -> None:
        super().__init__("method not allowed")


class NotImplementedYet(SkiffError):
    """A field or endpoint skiff's API does not serve yet (501): refused, never silently ignored."""


# The one table: the first row whose type matches gives the code; anything else is a 500.
STATUS_BY_TYPE: tuple[tuple[type[SkiffError], int], ...] = (
    (MethodNotAllowed, 405),
    (NotImplementedYet, 501),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidArgument, 400),
    (UsageError, 400),
)


def status_for(exc: BaseException) -> int:
    """The status code for an exception raised while serving a request."""
    for kind, status in STATUS_BY_TYPE:
        if isinstance(exc, kind):
            return status
    return INTERNAL


def message_for(exc: BaseException) -> str:
    """What the client is told: skiff's message for its own errors, never a traceback; for a bug,
    the type and text only (the server logs the same one line)."""
    if isinstance(exc, SkiffError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc.strerror or exc)
    return f"internal error: {type(exc).__name__}: {exc}"
