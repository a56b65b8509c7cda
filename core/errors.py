"""Exceptions that carry a message meant for the user."""


class CutTreeError(Exception):
    """Base class: the message is complete and can be shown to the user as is."""


class ImageLoadError(CutTreeError):
    """An image file could not be read; the message names the file and the reason."""


class ModelLoadError(CutTreeError):
    """A model could not be loaded; the message says what to do."""


class SettingsError(CutTreeError):
    """A setting has an invalid value."""


class Cancelled(CutTreeError):
    """The user cancelled a running job."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


def printable(text: str) -> str:
    """`text` with control characters escaped (a newline becomes \\n), so a message stays on one line."""
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in text)
