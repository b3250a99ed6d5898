"""The exceptions raised by groupscope.

Every exception is a :class:`GroupscopeError`. Errors about an argument also derive from
:class:`ValueError` (or :class:`TypeError` for a value that has no JSON form), so code that
already catches the built-in classes keeps working. A call that raises has recorded nothing.
"""

from __future__ import annotations


class GroupscopeError(Exception):
    """Base class of every groupscope exception."""


class InvalidConfigError(GroupscopeError, ValueError):
    """A ``Client`` argument cannot be used; the message names it and the accepted values."""


class InvalidArgumentError(GroupscopeError, ValueError):
    """A method argument is outside its range, for example a negative or infinite timeout."""


class InvalidEventNameError(GroupscopeError, ValueError):
    """The event name is empty or too long."""


class InvalidPropertyError(GroupscopeError, ValueError):
    """A property cannot be sent, for example a reserved name or a wrong shape."""


class UnsupportedValueError(GroupscopeError, TypeError):
    """A property value has no JSON form (bytes, a non-str dict key, an arbitrary object)."""


class InvalidGroupKeyError(GroupscopeError, ValueError):
    """A group key is empty or reserved."""


class InvalidGroupIdError(GroupscopeError, ValueError):
    """A group id is not a non-empty str or an int."""


class InvalidDistinctIdError(GroupscopeError, ValueError):
    """A distinct_id is empty or a value that Mixpanel rejects."""


class InvalidTimeError(GroupscopeError, ValueError):
    """An event time is outside the accepted range or not finite."""


class StorageError(GroupscopeError, OSError):
    """The local store could not be opened or written."""


class ShutDownError(GroupscopeError, RuntimeError):
    """The client was shut down; create a new ``Client`` to record more data."""


__all__ = [
    "GroupscopeError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "InvalidDistinctIdError",
    "InvalidEventNameError",
    "InvalidGroupIdError",
    "InvalidGroupKeyError",
    "InvalidPropertyError",
    "InvalidTimeError",
    "ShutDownError",
    "StorageError",
    "UnsupportedValueError",
]
