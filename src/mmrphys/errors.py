"""Exceptions that carry a one-line, user-facing message.

The CLI prints ``str(error)`` of any :class:`MmrphysError` without a traceback and exits non-zero;
everything else is a bug and is shown with its traceback.
"""


class MmrphysError(Exception):
    """Base class: a problem with the user's input, files or settings."""

    exit_code = 2


class InputError(MmrphysError, ValueError):
    """Bad input data: missing file, undecodable video, wrong shape, too short, ..."""


class ConfigError(MmrphysError, ValueError):
    """Bad configuration: unknown key, bad value, incompatible options."""


class WeightsError(MmrphysError, ValueError):
    """Unreadable weights, or weights that do not fit the requested model."""
