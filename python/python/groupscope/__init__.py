"""groupscope: product analytics with first-class group analytics.

A :class:`Client` records events and group profile changes on the calling thread in a few
microseconds and hands them to a background worker written in Rust, which batches, compresses
and delivers them in Mixpanel's ingestion protocol::

    import groupscope

    client = groupscope.Client("PROJECT_TOKEN")
    with client.groups(company_id="acme"):
        client.track("Report Exported", {"format": "csv"}, distinct_id="user-42")
    client.group("company_id", "acme").set({"plan": "enterprise"})
    client.flush(timeout=5.0)

Python values map to JSON by one rule, shared by every groupscope binding:

* ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``, ``dict`` (``str`` keys) and ``list``
  map to their JSON counterparts; ``tuple``, ``set`` and ``frozenset`` become lists.
* ``datetime.datetime`` becomes ``"YYYY-MM-DDTHH:MM:SS.mmmZ"`` in UTC. An aware value is
  converted to UTC; a naive value is read as UTC. Milliseconds are always written and
  microseconds are truncated.
* ``datetime.date`` becomes ``"YYYY-MM-DD"``.
* ``decimal.Decimal`` becomes an integer when it is whole and fits in 64 bits. Otherwise it
  becomes a number when the shortest ``float`` form has the same value (``Decimal("19.99")``
  becomes ``19.99``). Otherwise it becomes its ``str()`` form as a JSON string, so no digit
  is lost.
* ``uuid.UUID`` becomes its canonical hyphenated string.
* NaN and infinite floats and Decimals become ``null``; each one is counted in
  ``Client.stats().non_finite_replaced`` and logged as a warning.
* A ``str`` with a lone surrogate is sent with U+FFFD in its place.
* Any other value, an ``int`` outside 64 bits, or a non-``str`` dict key raises
  :class:`UnsupportedValueError` (a ``TypeError``) naming the property, and nothing is
  recorded for that call.

The core's log records reach the ``groupscope`` logger (and its children) when the
application next calls a client method, because the worker thread never takes the GIL.
The ``on_drop`` callback is called the same way, on the thread of the next client call.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Any

from groupscope import _native
from groupscope._native import DropReport, GroupContext, GroupHandle, Stats
from groupscope.errors import (
    GroupscopeError,
    InvalidConfigError,
    InvalidDistinctIdError,
    InvalidEventNameError,
    InvalidGroupIdError,
    InvalidGroupKeyError,
    InvalidPropertyError,
    InvalidTimeError,
    ShutDownError,
    StorageError,
    UnsupportedValueError,
)

__version__: str = _native.LIB_VERSION

# A library never prints through logging's last-resort handler; applications add handlers.
logging.getLogger("groupscope").addHandler(logging.NullHandler())

# Every client created in this process and still alive, for the fork and exit hooks.
_live_clients: "weakref.WeakSet[Client]" = weakref.WeakSet()
_live_clients_lock = threading.Lock()


class Client(_native.Client):
    """A groupscope client. One per process is enough; it is safe to share between threads.

    ``exit_timeout`` is the maximum time, in seconds, that the interpreter waits at exit for
    the clients to deliver their queued records. The other keyword arguments configure the
    core, and the stub file ``_native.pyi`` lists each one with its unit.
    """

    _exit_timeout: float

    def __new__(cls, token: str, *, exit_timeout: float = 5.0, **options: Any) -> "Client":
        client = super().__new__(cls, token, **options)
        if not exit_timeout >= 0:
            raise InvalidConfigError(
                f"invalid configuration: exit_timeout must be a number of seconds >= 0, got {exit_timeout!r}"
            )
        client._exit_timeout = float(exit_timeout)
        with _live_clients_lock:
            _live_clients.add(client)
        return client

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(timeout=self._exit_timeout)


def _reinit_clients_after_fork() -> None:
    """Give every live client a new worker and store in the child process of ``os.fork()``."""
    global _live_clients_lock
    # The parent's lock may have been held by another thread at fork time.
    _live_clients_lock = threading.Lock()
    _native.discard_logs()
    for client in list(_live_clients):
        client._reinit_after_fork()


def _shutdown_clients_at_exit() -> None:
    """Shut down every live client within the largest ``exit_timeout`` among them in total."""
    clients = list(_live_clients)
    if not clients:
        _native.forward_logs()
        return
    deadline = time.monotonic() + max(client._exit_timeout for client in clients)
    for client in clients:
        remaining = max(0.0, deadline - time.monotonic())
        client.shutdown(timeout=min(remaining, client._exit_timeout))
    _native.forward_logs()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_clients_after_fork)
atexit.register(_shutdown_clients_at_exit)


def sync_log_level() -> None:
    """Read the level of the ``groupscope`` logger again after the application changed it."""
    _native.sync_log_level()


__all__ = [
    "Client",
    "DropReport",
    "GroupContext",
    "GroupHandle",
    "GroupscopeError",
    "InvalidConfigError",
    "InvalidDistinctIdError",
    "InvalidEventNameError",
    "InvalidGroupIdError",
    "InvalidGroupKeyError",
    "InvalidPropertyError",
    "InvalidTimeError",
    "ShutDownError",
    "Stats",
    "StorageError",
    "UnsupportedValueError",
    "__version__",
    "sync_log_level",
]

