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
]

LIB_VERSION: str

def forward_logs() -> None:
    """Forward the core's queued log records to the ``groupscope`` logger now."""

def discard_logs() -> None:
    """Drop the core's queued log records; a child process calls it after ``os.fork()``."""

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
    """Adds groups to every event tracked inside a ``with`` block (per thread and task)."""

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
        batch_size: int = 50,
        import_batch_size: int = 2000,
        flush_interval: float = 1.0,
        max_queue_records: int = 100000,
        max_queue_bytes: int = 104857600,
        max_request_bytes: int = 1048576,
        max_import_request_bytes: int = 10000000,
        request_timeout: float = 10.0,
        initial_retry_delay: float = 2.0,
        max_retry_delay: float = 60.0,
        max_attempts_per_cycle: int = 3,
        gzip: bool = True,
        import_credentials: Optional[str] = None,
        project_id: Optional[str] = None,
        on_drop: Optional[Callable[[DropReport], object]] = None,
    ) -> Self: ...
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
    def register(self, properties: Dict[str, Any]) -> None: ...
    def unregister(self, name: str) -> None: ...
    def flush(self, timeout: float = 10.0) -> bool: ...
    def shutdown(self, timeout: float = 10.0) -> bool: ...
    def opt_out(self) -> None: ...
    def opt_in(self) -> None: ...
    @property
    def is_opted_out(self) -> bool: ...
    def stats(self) -> Stats: ...
    def _reinit_after_fork(self) -> None: ...
    def _forward_to_python(self) -> None: ...

