"""Type stubs of the native module ``groupscope._native`` (the pyo3 binding of the core)."""

import os
from types import TracebackType
from typing import Any, Callable, Dict, Iterable, List, Optional, Type, Union

from typing_extensions import Self, disjoint_base, final

__all__ = [
    "Client",
    "GroupHandle",
    "GroupContext",
    "DropReport",
    "Stats",
    "LIB_VERSION",
    "forward_logs",
    "sync_log_level",
    "discard_logs",
    "close_fork_gate",
    "open_fork_gate",
    "reset_fork_gate",
]

LIB_VERSION: str

def forward_logs() -> None:
    """Forward the core's queued log records to the ``groupscope`` logger now."""

def discard_logs() -> None:
    """Drop the core's queued log records; a child process calls it after ``os.fork()``."""

def close_fork_gate() -> None:
    """Wait until no thread is inside a core call and keep new calls out (before ``fork()``)."""

def open_fork_gate() -> None:
    """Let core calls in again in the parent after ``fork()``."""

def reset_fork_gate() -> None:
    """Let core calls in again in the child after ``fork()``."""

def sync_log_level() -> None:
    """Read the effective level of the ``groupscope`` logger again."""

_GroupIdValue = Union[str, int]

@final
class DropReport:
    """Records dropped together for one reason, passed to the ``on_drop`` callback."""

    @property
    def reason(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def insert_ids(self) -> List[str]: ...
    @property
    def status(self) -> Optional[int]: ...
    @property
    def message(self) -> Optional[str]: ...

@final
class Stats:
    """A snapshot of a client's counters since it was created."""

    @property
    def enqueued(self) -> int: ...
    @property
    def delivered(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def queued(self) -> int: ...
    @property
    def dropped_queue_full(self) -> int: ...
    @property
    def dropped_too_large(self) -> int: ...
    @property
    def dropped_rejected(self) -> int: ...
    @property
    def dropped_unauthorized(self) -> int: ...
    @property
    def dropped_store_reset(self) -> int: ...
    @property
    def dropped_opted_out(self) -> int: ...
    @property
    def dropped_storage_unavailable(self) -> int: ...
    @property
    def dropped_at_shutdown(self) -> int: ...
    @property
    def store_resets(self) -> int: ...
    @property
    def non_finite_replaced(self) -> int: ...
    @property
    def partially_rejected_batches(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    def as_dict(self) -> Dict[str, int]: ...

@final
class GroupContext:
    """Adds groups to every event tracked inside a ``with`` block (per thread and task).

    One object can be entered again, nested, and shared by concurrent threads and asyncio
    tasks, because each thread or task keeps its own reset tokens. A ``with`` block must end
    in the thread or task that entered it. Threads started inside the block do not inherit
    the groups (``contextvars`` are not copied to new threads); asyncio tasks do.
    """

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

@final
class GroupHandle:
    """A handle on one group profile; each call enqueues one ``/groups`` record."""

    @property
    def key(self) -> str: ...
    @property
    def id(self) -> str: ...
    def set(self, properties: Dict[str, Any]) -> None: ...
    def set_once(self, properties: Dict[str, Any]) -> None: ...
    def unset(self, names: Union[str, Iterable[str]]) -> None: ...
    def union(self, values: Dict[str, Any]) -> None: ...
    def remove(self, values: Dict[str, Any]) -> None: ...
    def delete(self) -> None: ...

@disjoint_base
class Client:
    """The native client. Seconds are floats; sizes are counts of records or bytes."""

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
    ) -> Self:
        """Create a client. Arguments left as ``None`` keep the core's defaults.

        ``batch_size`` (50) and ``import_batch_size`` (2000) are records per request.
        ``flush_interval`` (1.0), ``request_timeout`` (10.0), ``initial_retry_delay`` (2.0)
        and ``max_retry_delay`` (60.0) are seconds. ``max_queue_records`` (1,000,000) and
        ``max_queue_bytes`` (512 MiB) cap the queue. ``max_request_bytes`` (1 MiB) and
        ``max_import_request_bytes`` (10,000,000) cap a request body.
        ``max_attempts_per_cycle`` (3) is the number of attempts before a retry delay.
        """
    def track(
        self,
        event: str,
        properties: Optional[Dict[str, Any]] = None,
        *,
        distinct_id: Optional[str] = None,
        groups: Optional[Dict[str, Union[_GroupIdValue, Iterable[_GroupIdValue], None]]] = None,
        time: Union[float, Any, None] = None,
    ) -> str: ...
    def import_event(
        self,
        event: str,
        properties: Optional[Dict[str, Any]] = None,
        *,
        distinct_id: Optional[str] = None,
        groups: Optional[Dict[str, Union[_GroupIdValue, Iterable[_GroupIdValue], None]]] = None,
        time: Union[float, Any, None] = None,
    ) -> str: ...
    def identify(self, distinct_id: str) -> None: ...
    @property
    def distinct_id(self) -> str: ...
    def set_group(self, key: str, ids: Union[_GroupIdValue, Iterable[_GroupIdValue]]) -> None: ...
    def add_group(self, key: str, id: _GroupIdValue) -> None: ...
    def remove_group(self, key: str, id: _GroupIdValue) -> None: ...
    def current_groups(self) -> Dict[str, List[str]]: ...
    def group(self, key: str, id: _GroupIdValue) -> GroupHandle: ...
    def groups(self, **groups: Union[_GroupIdValue, Iterable[_GroupIdValue], None]) -> GroupContext: ...
    def engage(self, distinct_id: str, operation: str, value: Any = None) -> None:
        """Record a user-profile update for ``/engage``.

        ``operation`` is ``"$set"``, ``"$set_once"``, ``"$add"``, ``"$append"``,
        ``"$union"``, ``"$remove"`` (each takes a dict), ``"$unset"`` (a list of names) or
        ``"$delete"`` (no value).
        """
    def register(self, properties: Dict[str, Any]) -> None: ...
    def unregister(self, name: str) -> None: ...
    def flush(self, timeout: float = ...) -> bool:
        """Wait until everything recorded before this call was delivered or dropped.

        Returns ``True`` when everything was settled. Returns ``False`` after ``timeout``
        seconds (default 10), or earlier when a retry cycle ended without delivering and
        the records wait for their next attempt, so ``False`` means "not yet delivered".
        """
    def shutdown(self, timeout: float = ...) -> bool:
        """Flush, stop the worker and close the store within ``timeout`` seconds (default 10).

        Idempotent. Returns whether everything was delivered.
        """
    def opt_out(self) -> None: ...
    def opt_in(self) -> None: ...
    @property
    def is_opted_out(self) -> bool: ...
    def stats(self) -> Stats: ...
    def _prepare_fork(self) -> bool: ...
    def _after_fork_in_parent(self) -> None: ...
    def _reinit_after_fork(self) -> None: ...
    def _shutdown_at_exit(self, timeout: float) -> bool: ...
    def _forward_to_python(self) -> None: ...

