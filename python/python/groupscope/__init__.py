"""groupscope: product analytics with first-class group analytics.

A :class:`Client` records events and group profile changes on the calling thread in a few
microseconds and hands them to a background worker written in Rust, which batches, compresses
and delivers them in Mixpanel's ingestion protocol::

    import groupscope

    # A local server; without api_host the client sends to Mixpanel (https://api.mixpanel.com).
    client = groupscope.Client("PROJECT_TOKEN", api_host="http://127.0.0.1:8750")
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

At interpreter exit, a hook shuts every live client down within the largest
``exit_timeout`` among them. Recording calls made after that, for example from a daemon
thread, are ignored and return an empty ``$insert_id``. The first one is logged at debug
level. After an explicit ``shutdown()``, recording calls raise :class:`ShutDownError`.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
import weakref
from typing import Callable, List, Optional, Union

from groupscope import _native
from groupscope._native import DropReport, GroupContext, GroupHandle, Stats
from groupscope.errors import (
    GroupscopeError,
    InvalidArgumentError,
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

# The clients whose workers the `before` fork hook parked. The list keeps them alive until the
# `after` hook resumes them: dropping a client waits for its worker, and nothing would resume
# the worker of a client that another thread dropped in between.
_parked_for_fork: "List[Client]" = []


class Client(_native.Client):
    """A groupscope client. One per process is enough; it is safe to share between threads.

    ``exit_timeout`` is the maximum time, in seconds, that the interpreter waits at exit for
    the clients to deliver their queued records. The other keyword arguments configure the
    core, and the stub file ``_native.pyi`` describes each one with its unit. An argument left
    as ``None`` keeps the core's default.
    """

    _exit_timeout: float

    def __new__(
        cls,
        token: str,
        *,
        api_host: Optional[str] = None,
        data_dir: Union[str, "os.PathLike[str]", None] = None,
        batch_size: Optional[int] = None,
        import_batch_size: Optional[int] = None,
        flush_interval: Optional[float] = None,
        max_queue_records: Optional[int] = None,
        max_queue_bytes: Optional[int] = None,
        max_request_bytes: Optional[int] = None,
        max_import_request_bytes: Optional[int] = None,
        request_timeout: Optional[float] = None,
        initial_retry_delay: Optional[float] = None,
        max_retry_delay: Optional[float] = None,
        max_attempts_per_cycle: Optional[int] = None,
        gzip: bool = True,
        import_credentials: Optional[str] = None,
        project_id: Optional[str] = None,
        on_drop: Optional[Callable[[DropReport], object]] = None,
        exit_timeout: float = 5.0,
    ) -> "Client":
        is_number = isinstance(exit_timeout, (int, float)) and not isinstance(exit_timeout, bool)
        if not is_number or not math.isfinite(exit_timeout) or exit_timeout < 0:
            raise InvalidConfigError(
                f"invalid configuration: exit_timeout must be a finite number of seconds >= 0, got {exit_timeout!r}"
            )
        client = super().__new__(
            cls,
            token,
            api_host=api_host,
            data_dir=data_dir,
            batch_size=batch_size,
            import_batch_size=import_batch_size,
            flush_interval=flush_interval,
            max_queue_records=max_queue_records,
            max_queue_bytes=max_queue_bytes,
            max_request_bytes=max_request_bytes,
            max_import_request_bytes=max_import_request_bytes,
            request_timeout=request_timeout,
            initial_retry_delay=initial_retry_delay,
            max_retry_delay=max_retry_delay,
            max_attempts_per_cycle=max_attempts_per_cycle,
            gzip=gzip,
            import_credentials=import_credentials,
            project_id=project_id,
            on_drop=on_drop,
        )
        client._exit_timeout = float(exit_timeout)
        with _live_clients_lock:
            _live_clients.add(client)
        _watch_multiprocessing()
        return client

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(timeout=self._exit_timeout)


def _prepare_clients_for_fork() -> None:
    """Keep other threads out of core calls and park every live client's worker before ``os.fork()``."""
    global _parked_for_fork
    _native.close_fork_gate()
    _parked_for_fork = list(_live_clients)
    for client in _parked_for_fork:
        client._prepare_fork()


def _resume_clients_after_fork() -> None:
    """Let the parked workers and the other threads' core calls go on in the parent after ``os.fork()``."""
    global _parked_for_fork
    parked, _parked_for_fork = _parked_for_fork, []
    for client in parked:
        client._after_fork_in_parent()
    _native.open_fork_gate()


def _reinit_clients_after_fork() -> None:
    """Give every live client a new worker and store in the child process of ``os.fork()``."""
    global _live_clients_lock, _parked_for_fork
    _native.reset_fork_gate()
    # The parent's lock may have been held by another thread at fork time.
    _live_clients_lock = threading.Lock()
    _native.discard_logs()
    for client in list(_live_clients):
        client._reinit_after_fork()
    _parked_for_fork = []


def _shutdown_clients_at_exit() -> None:
    """Shut down every live client within the largest ``exit_timeout`` among them in total."""
    clients = list(_live_clients)
    if not clients:
        _native.forward_logs()
        return
    deadline = time.monotonic() + max(client._exit_timeout for client in clients)
    for client in clients:
        remaining = max(0.0, deadline - time.monotonic())
        client._shutdown_at_exit(min(remaining, client._exit_timeout))
    _native.forward_logs()


class _MultiprocessingWatch:
    """The key of the after-fork function registered with ``multiprocessing.util``."""


_watching_multiprocessing = False
_process_exit_registered_in: Optional[int] = None


def _watch_multiprocessing() -> None:
    """Shut down clients when a ``multiprocessing`` child process ends, in every such child.

    A child started by ``multiprocessing`` with the fork start method leaves with
    ``os._exit()`` once its target returns, so ``atexit`` hooks do not run there. Its
    finalizers do, so one is registered in each child: through ``register_after_fork`` for
    children forked from this process, and at once when a client is created in a child.
    """
    global _watching_multiprocessing
    import multiprocessing.util

    if not _watching_multiprocessing:
        _watching_multiprocessing = True
        multiprocessing.util.register_after_fork(_MultiprocessingWatch, _register_process_exit)
    _register_process_exit()


def _register_process_exit(_: object = None) -> None:
    """Register the exit shutdown as a finalizer of this ``multiprocessing`` child, once."""
    global _process_exit_registered_in
    import multiprocessing.util

    if multiprocessing.parent_process() is None or _process_exit_registered_in == os.getpid():
        return
    _process_exit_registered_in = os.getpid()
    multiprocessing.util.Finalize(None, _shutdown_clients_at_exit, exitpriority=0)


if hasattr(os, "register_at_fork"):
    # At the instant of the fork, the gate keeps other threads out of core calls and each
    # client's delivery worker is parked outside SQLite, so the child inherits no lock that
    # one of them held.
    os.register_at_fork(
        before=_prepare_clients_for_fork,
        after_in_parent=_resume_clients_after_fork,
        after_in_child=_reinit_clients_after_fork,
    )
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
    "InvalidArgumentError",
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

