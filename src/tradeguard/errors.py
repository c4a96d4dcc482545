"""Failures a caller can fix, one type per kind; the API maps each to one HTTP status in one place."""


class TradeguardError(Exception):
    """Base for failures reported to the caller with their message."""


class NotFound(TradeguardError):
    """The resource does not exist, or belongs to someone the caller may not see."""


class Conflict(TradeguardError):
    """The request contradicts what is already stored."""


class InvalidInput(TradeguardError):
    """The request is well-formed but its values are not acceptable.

    `location` is the path of the value concerned, as in a validation error (`("body", "opened_at")`).
    """

    def __init__(self, message: str, *, location: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.location = location


class NotAuthenticated(TradeguardError):
    """Credentials, token or signature missing or wrong."""


class Forbidden(TradeguardError):
    """Authenticated, but the caller's role does not allow this."""
