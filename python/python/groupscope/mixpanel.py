"""A drop-in for the ``mixpanel`` package (version 5.4.1) that records through groupscope.

Replace ``from mixpanel import Mixpanel`` with ``from groupscope.mixpanel import Mixpanel``.
The classes keep the ``mixpanel`` package's names and signatures.

* With the default consumer, or a :class:`Consumer` / :class:`BufferedConsumer` from this
  module, events and user and group profile updates go to the groupscope core: ``track``
  returns after a few microseconds and a background worker batches and retries. Delivery
  failures are logged to the ``groupscope`` logger instead of raised, because the sending
  happens later. The exit hook of :mod:`groupscope` delivers what is queued at exit, so
  code written for the ``mixpanel`` package's unbuffered ``Consumer`` needs no ``flush()``.
* With any other consumer object, ``Mixpanel`` builds exactly the messages the ``mixpanel``
  package builds (same keys, ``mp_lib="python"``, ``$lib_version`` of the ``mixpanel``
  package, ``_now()`` and ``_make_insert_id()`` hooks) and calls
  ``consumer.send(endpoint, json_message[, (api_key, api_secret)])``, so tests that record or
  patch those keep passing.

Differences from the ``mixpanel`` package, all deliberate:

* ``alias`` sends through the configured consumer; the ``mixpanel`` package always opens a
  new default ``Consumer`` to ``api.mixpanel.com``, ignoring ``api_host``.
* ``api_host`` may carry a scheme (``"http://127.0.0.1:8750"``) to reach a local server;
  without one, ``https://`` is used as before.
* Feature flags (``local_flags_config``, ``remote_flags_config``) are not supported and raise
  :class:`MixpanelException`.
* On the core path, ``meta`` keys other than ``event`` and ``properties`` are not sent, and
  the core sets ``mp_lib``, ``$lib_version`` and the profile ``$time`` itself.
* On the core path, an event's ``distinct_id`` is sent as the ``mixpanel`` package sends it:
  ``""`` (an event with no user), ``None`` (sent as ``null``, also no user) and an ``int``
  (``7`` stays ``7``) as given, and a ``distinct_id`` key in ``properties`` wins over the
  argument. The core raises :class:`MixpanelException` before sending for Mixpanel's
  placeholder values (``"null"``, ``"anonymous"``, ``"0"``, ``0``, ``-1`` and others), for
  ``None`` in ``import_data`` (Mixpanel's ``/import`` needs ``""`` for no user), and for a
  ``str`` of only whitespace, a ``bool``, a ``float``, a ``list`` or a ``dict``, which the
  ``mixpanel`` package sends as given.
* On the core path, a user-profile ``$distinct_id`` (``people_*``) must name a user: ``""``,
  ``None`` and placeholder values raise :class:`MixpanelException` naming the value. The
  ``mixpanel`` package sends them and raises only when Mixpanel responds with an error. An
  ``int`` is sent as its decimal string (``7`` becomes ``"7"``), because the core takes a
  ``str``. A ``group_*`` ``int`` ``$group_id`` is sent as its decimal string too, because the
  core keeps group ids as strings, and ``""`` or ``None`` raise :class:`MixpanelException`
  naming the value. groupscope-server reads a numeric ``$distinct_id`` or ``$group_id`` as
  the same string.
* A custom consumer receives every ``distinct_id`` and ``$group_id`` as the ``mixpanel``
  package builds it.
* On the core path, a server that is down does not make ``people_*`` raise; the records
  wait in the queue and are retried.
"""

from __future__ import annotations

import datetime
import json
import logging
import threading
import time
import urllib.parse
import uuid
from typing import Any, Dict, List, Optional, Tuple, Type, Union

import groupscope
from groupscope.errors import GroupscopeError, UnsupportedValueError

__version__ = "5.4.1"
"""The ``mixpanel`` package version whose behaviour this module reproduces; it is sent as
``$lib_version`` in messages built for custom consumers."""

_ENDPOINTS = ("events", "people", "groups", "imports")

_PROFILE_OPERATIONS = ("$set", "$set_once", "$add", "$append", "$union", "$remove", "$unset", "$delete")

logger = logging.getLogger(__name__)


class MixpanelException(Exception):  # noqa: N818 - the mixpanel package's name
    """Raised when a message cannot be sent or an endpoint does not exist."""


class DatetimeSerializer(json.JSONEncoder):
    """Encodes ``datetime`` values as ``%Y-%m-%dT%H:%M:%S``, as the ``mixpanel`` package does."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, datetime.datetime):
            return obj.strftime("%Y-%m-%dT%H:%M:%S")
        return json.JSONEncoder.default(self, obj)


def json_dumps(data: Any, cls: Optional[Type[json.JSONEncoder]] = None) -> str:
    """Serialise ``data`` without whitespace, as the ``mixpanel`` package does."""
    return json.dumps(data, separators=(",", ":"), cls=cls)


class ServiceAccountCredentials:
    """Service account credentials for ``/import``: a username, a secret and a project id."""

    def __init__(self, username: str, secret: str, project_id: str) -> None:
        for name, value in (("username", username), ("secret", secret), ("project_id", project_id)):
            if not isinstance(value, str):
                raise TypeError(f"Service account {name} must be a string, got {type(value).__name__}")
        self.username = username
        self.secret = secret
        self.project_id = project_id


def _base_url(api_host: str) -> str:
    """Return ``scheme://host`` for an ``api_host`` given with or without a scheme."""
    api_host = api_host.rstrip("/")
    if "://" in api_host:
        return api_host
    return f"https://{api_host}"


def _endpoint_base(url: str, path: str) -> str:
    """Return the base URL of an endpoint URL such as ``https://host/track``."""
    stripped = url.rstrip("/")
    if stripped.endswith("/" + path):
        return stripped[: -len(path) - 1]
    parsed = urllib.parse.urlsplit(stripped)
    return f"{parsed.scheme}://{parsed.netloc}"


class Consumer:
    """Records messages through the groupscope core instead of one HTTP request per call.

    The arguments are the ``mixpanel`` package's. ``events_url``, ``people_url``,
    ``groups_url`` and ``import_url`` select the host of the core client, the first one given
    winning. ``retry_limit``, ``retry_backoff_factor`` and ``verify_cert`` are accepted and
    ignored, because the core retries with its own backoff and always verifies certificates.
    """

    _batch_size = 50

    def __init__(
        self,
        events_url: Optional[str] = None,
        people_url: Optional[str] = None,
        import_url: Optional[str] = None,
        request_timeout: Optional[float] = None,
        groups_url: Optional[str] = None,
        api_host: str = "api.mixpanel.com",
        retry_limit: int = 4,
        retry_backoff_factor: float = 0.25,
        verify_cert: bool = True,
        credentials: Optional[ServiceAccountCredentials] = None,
    ) -> None:
        base = _base_url(api_host)
        self._api_host = base
        endpoint_urls = ((events_url, "track"), (people_url, "engage"), (groups_url, "groups"), (import_url, "import"))
        for url, path in endpoint_urls:
            if url:
                self._api_host = _endpoint_base(url, path)
                break
        self._request_timeout = request_timeout if request_timeout is not None else 10.0
        self._credentials = credentials
        self._clients: Dict[Tuple[str, Optional[str]], groupscope.Client] = {}
        self._clients_lock = threading.Lock()

    def client(self, token: str, import_secret: Optional[str] = None) -> groupscope.Client:
        """Return the groupscope client that records messages for ``token``."""
        key = (token, import_secret)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._clients_lock:
            client = self._clients.get(key)
            if client is None:
                client = self._new_client(token, import_secret)
                self._clients[key] = client
        return client

    def _new_client(self, token: str, import_secret: Optional[str]) -> groupscope.Client:
        import_credentials = None
        project_id = None
        if self._credentials is not None:
            import_credentials = f"{self._credentials.username}:{self._credentials.secret}"
            project_id = self._credentials.project_id
        elif import_secret is not None:
            import_credentials = f"{import_secret}:"
        return groupscope.Client(
            token,
            api_host=self._api_host,
            batch_size=self._batch_size,
            request_timeout=self._request_timeout,
            import_credentials=import_credentials,
            project_id=project_id,
        )

    def send(
        self,
        endpoint: str,
        json_message: str,
        api_key: Union[str, Tuple[Optional[str], Optional[str]], None] = None,
        api_secret: Optional[str] = None,
    ) -> None:
        """Record one message (a JSON object, or a JSON list of objects) for ``endpoint``."""
        if endpoint not in _ENDPOINTS:
            raise MixpanelException(
                f'No such endpoint "{endpoint}". Valid endpoints are one of {_ENDPOINTS}'
            )
        if isinstance(api_key, tuple):
            api_key, api_secret = api_key
        try:
            parsed = json.loads(json_message)
        except ValueError as error:
            raise MixpanelException(f"the {endpoint} message is not valid JSON: {error}") from error
        messages = parsed if isinstance(parsed, list) else [parsed]
        for message in messages:
            self._record(endpoint, message, api_secret)

    def _record(self, endpoint: str, message: Dict[str, Any], api_secret: Optional[str]) -> None:
        try:
            if endpoint == "events" or endpoint == "imports":
                self._record_event(endpoint, message, api_secret)
            elif endpoint == "groups":
                self._record_group_update(message)
            else:
                self._record_profile_update(message)
        except UnsupportedValueError:
            raise
        except GroupscopeError as error:
            raise MixpanelException(str(error)) from error

    def _record_event(self, endpoint: str, message: Dict[str, Any], api_secret: Optional[str]) -> None:
        properties = dict(message.get("properties") or {})
        token = properties.pop("token", None)
        if not isinstance(token, str):
            raise MixpanelException(f"the {endpoint} message has no token property: {message!r:.200}")
        event_time = properties.pop("time", None)
        properties.pop("mp_lib", None)
        properties.pop("$lib_version", None)
        if endpoint == "imports" and api_secret is None and self._credentials is None:
            raise MixpanelException(
                "Mixpanel error: /import needs credentials; pass api_secret= or "
                "Consumer(credentials=ServiceAccountCredentials(...))"
            )
        client = self.client(token, api_secret if endpoint == "imports" else None)
        record = client.import_event if endpoint == "imports" else client.track
        # The distinct_id stays a property, so the core sends its JSON value as given. A
        # message without one gets the client's anonymous id.
        record(message.get("event", ""), properties, time=event_time)

    def _record_group_update(self, message: Dict[str, Any]) -> None:
        token = message.get("$token")
        if not isinstance(token, str):
            raise MixpanelException(f"the groups message has no $token: {message!r:.200}")
        group = self.client(token).group(message["$group_key"], message["$group_id"])
        if "$set" in message:
            group.set(message["$set"])
        elif "$set_once" in message:
            group.set_once(message["$set_once"])
        elif "$union" in message:
            group.union(message["$union"])
        elif "$unset" in message:
            group.unset(message["$unset"])
        elif "$remove" in message:
            group.remove(message["$remove"])
        elif "$delete" in message:
            group.delete()
        else:
            raise MixpanelException(
                f"the groups message has no operation ($set, $set_once, $union, $unset, $remove or $delete): {message!r:.200}"
            )

    def _record_profile_update(self, message: Dict[str, Any]) -> None:
        token = message.get("$token")
        if not isinstance(token, str):
            raise MixpanelException(f"the people message has no $token: {message!r:.200}")
        operation = next((key for key in _PROFILE_OPERATIONS if key in message), None)
        if operation is None:
            raise MixpanelException(
                f"the people message has no operation ({', '.join(_PROFILE_OPERATIONS)}): {message!r:.200}"
            )
        distinct_id = _profile_distinct_id(message.get("$distinct_id"))
        self.client(token).engage(distinct_id, operation, message[operation])

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver everything recorded so far, waiting at most ``timeout`` seconds per token.

        Returns whether everything was delivered.
        """
        settled = True
        for client in list(self._clients.values()):
            settled = client.flush(timeout=timeout) and settled
        return settled


def _profile_distinct_id(distinct_id: Any) -> str:
    """Return the ``$distinct_id`` of a user-profile update as the ``str`` the core takes.

    An ``int`` becomes its decimal string. The core rejects ``""`` and placeholder values.
    """
    if isinstance(distinct_id, str):
        return distinct_id
    if isinstance(distinct_id, int) and not isinstance(distinct_id, bool):
        return str(distinct_id)
    raise MixpanelException(
        f"invalid $distinct_id {distinct_id!r}: a user-profile update needs a user; "
        "pass the user's id as a str or an int"
    )


def _plain_distinct_id(distinct_id: Any) -> bool:
    """Return whether ``distinct_id`` has the same JSON form in the core as in ``json.dumps``."""
    return distinct_id is None or isinstance(distinct_id, (str, int, float))


def _event_properties(distinct_id: Any, properties: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Return the event properties the ``mixpanel`` package builds for ``distinct_id``.

    A ``distinct_id`` key in ``properties`` wins, and the values are in their JSON form.
    """
    merged: Dict[str, Any] = {"distinct_id": distinct_id}
    if properties:
        merged.update(properties)
    if properties or not _plain_distinct_id(distinct_id):
        return _official_json_form(merged)
    return merged


def _official_json_form(properties: Dict[str, Any]) -> Any:
    """Return ``properties`` as the ``mixpanel`` package serialises them.

    ``datetime`` values become ``%Y-%m-%dT%H:%M:%S`` strings, and a value that
    :class:`DatetimeSerializer` cannot encode (a ``Decimal``, a ``set``) raises ``TypeError``.
    """
    return json.loads(json_dumps(properties, cls=DatetimeSerializer))


class BufferedConsumer(Consumer):
    """The ``mixpanel`` package's ``BufferedConsumer`` signature, recording through the core.

    ``max_size`` (at most 50) becomes the batch size. Call :meth:`flush` before exit as with
    the ``mixpanel`` package; groupscope also flushes at interpreter exit within a bound.
    """

    def __init__(
        self,
        max_size: int = 50,
        events_url: Optional[str] = None,
        people_url: Optional[str] = None,
        import_url: Optional[str] = None,
        request_timeout: Optional[float] = None,
        groups_url: Optional[str] = None,
        api_host: str = "api.mixpanel.com",
        retry_limit: int = 4,
        retry_backoff_factor: float = 0.25,
        verify_cert: bool = True,
        credentials: Optional[ServiceAccountCredentials] = None,
    ) -> None:
        super().__init__(
            events_url,
            people_url,
            import_url,
            request_timeout,
            groups_url,
            api_host,
            retry_limit,
            retry_backoff_factor,
            verify_cert,
            credentials,
        )
        self._batch_size = max(1, min(50, max_size))


def _warn_deprecated_keys(api_key: Optional[str], api_secret: Optional[str]) -> None:
    """Log the ``mixpanel`` package's deprecation warnings for ``api_key`` and ``api_secret``."""
    if api_secret is not None:
        logger.warning("api_secret is deprecated; use ServiceAccountCredentials with Consumer(credentials=...)")
    if api_key is not None:
        logger.warning("api_key is deprecated; use ServiceAccountCredentials with Consumer(credentials=...)")


class Mixpanel:
    """Records events and profile updates, with the ``mixpanel`` package's methods.

    :param token: the Mixpanel project token
    :param consumer: a :class:`Consumer`, a :class:`BufferedConsumer` or any object with a
        ``send(endpoint, json_message, ...)`` method (default: a new :class:`Consumer`)
    :param serializer: the ``json.JSONEncoder`` subclass for messages built for a custom
        consumer or a custom serializer
    :param credentials: service account credentials for ``import_data``
    """

    def __init__(
        self,
        token: str,
        consumer: Any = None,
        serializer: Type[json.JSONEncoder] = DatetimeSerializer,
        local_flags_config: Any = None,
        remote_flags_config: Any = None,
        credentials: Optional[ServiceAccountCredentials] = None,
    ) -> None:
        if local_flags_config is not None or remote_flags_config is not None:
            raise MixpanelException(
                "feature flags are not supported by groupscope.mixpanel; use the mixpanel package for flags"
            )
        self._token = token
        self._credentials = credentials
        if consumer is not None and credentials is not None:
            logger.warning(
                "Mixpanel(credentials=...) is not used with a custom consumer; "
                "pass the credentials to the consumer instead, for example Consumer(credentials=...)"
            )
        self._consumer = consumer or Consumer(credentials=credentials)
        self._serializer = serializer
        # Messages go straight to the core only when nothing could observe them on the way.
        self._direct: Optional[Consumer] = None
        if isinstance(self._consumer, Consumer) and serializer is DatetimeSerializer:
            self._direct = self._consumer

    def _now(self) -> float:
        return time.time()

    def _make_insert_id(self) -> str:
        return uuid.uuid4().hex

    def _is_hooked(self) -> bool:
        """Return whether ``_now`` or ``_make_insert_id`` were replaced, as tests do."""
        return type(self)._now is not Mixpanel._now or type(self)._make_insert_id is not Mixpanel._make_insert_id or "_now" in self.__dict__ or "_make_insert_id" in self.__dict__

    def track(
        self,
        distinct_id: Any,
        event_name: str,
        properties: Optional[Dict[str, Any]] = None,
        meta: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Record an event; ``meta`` overrides top-level keys of the event message."""
        if self._direct is not None and not meta and not self._is_hooked():
            # The distinct_id goes in as a property, so the core sends its JSON value as given.
            converted = _event_properties(distinct_id, properties)
            try:
                self._direct.client(self._token).track(event_name, converted)
            except UnsupportedValueError:
                raise
            except GroupscopeError as error:
                raise MixpanelException(str(error)) from error
            return

        all_properties = {
            "token": self._token,
            "distinct_id": distinct_id,
            "time": self._now(),
            "$insert_id": self._make_insert_id(),
            "mp_lib": "python",
            "$lib_version": __version__,
        }
        if properties:
            all_properties.update(properties)
        event: Dict[str, Any] = {"event": event_name, "properties": all_properties}
        if meta:
            event.update(meta)
        self._consumer.send("events", json_dumps(event, cls=self._serializer))

    def import_data(
        self,
        api_key: Optional[str],
        distinct_id: Any,
        event_name: str,
        timestamp: float,
        properties: Optional[Dict[str, Any]] = None,
        meta: Optional[Dict[str, Any]] = None,
        api_secret: Optional[str] = None,
    ) -> None:
        """Record an event that happened more than 5 days ago, through ``/import``."""
        _warn_deprecated_keys(api_key, api_secret)
        all_properties = {
            "token": self._token,
            "distinct_id": distinct_id,
            "time": timestamp,
            "$insert_id": self._make_insert_id(),
            "mp_lib": "python",
            "$lib_version": __version__,
        }
        if properties:
            all_properties.update(properties)
        event: Dict[str, Any] = {"event": event_name, "properties": all_properties}
        if meta:
            event.update(meta)
        self._consumer.send("imports", json_dumps(event, cls=self._serializer), (api_key, api_secret))

    def alias(self, alias_id: str, original: str, meta: Optional[Dict[str, Any]] = None) -> None:
        """Create an alias from ``alias_id`` to ``original``, through the configured consumer."""
        event: Dict[str, Any] = {
            "event": "$create_alias",
            "properties": {"distinct_id": original, "alias": alias_id, "token": self._token},
        }
        if meta:
            event.update(meta)
        self._consumer.send("events", json_dumps(event, cls=self._serializer))

    def merge(
        self,
        api_key: Optional[str],
        distinct_id1: str,
        distinct_id2: str,
        meta: Optional[Dict[str, Any]] = None,
        api_secret: Optional[str] = None,
    ) -> None:
        """Merge two distinct_ids, through ``/import``."""
        _warn_deprecated_keys(api_key, api_secret)
        event: Dict[str, Any] = {
            "event": "$merge",
            "properties": {"$distinct_ids": [distinct_id1, distinct_id2], "token": self._token},
        }
        if meta:
            event.update(meta)
        self._consumer.send("imports", json_dumps(event, cls=self._serializer), (api_key, api_secret))

    def people_set(self, distinct_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Set properties of a user profile."""
        self.people_update({"$distinct_id": distinct_id, "$set": properties}, meta=meta or {})

    def people_set_once(self, distinct_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Set properties of a user profile that are not yet set."""
        self.people_update({"$distinct_id": distinct_id, "$set_once": properties}, meta=meta or {})

    def people_increment(self, distinct_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Add to numeric properties of a user profile."""
        self.people_update({"$distinct_id": distinct_id, "$add": properties}, meta=meta or {})

    def people_append(self, distinct_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Append values to list properties of a user profile."""
        self.people_update({"$distinct_id": distinct_id, "$append": properties}, meta=meta or {})

    def people_union(self, distinct_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Merge values into list properties of a user profile."""
        self.people_update({"$distinct_id": distinct_id, "$union": properties}, meta=meta or {})

    def people_unset(self, distinct_id: Any, properties: List[str], meta: Optional[Dict[str, Any]] = None) -> None:
        """Delete properties of a user profile."""
        self.people_update({"$distinct_id": distinct_id, "$unset": properties}, meta=meta)

    def people_remove(self, distinct_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Remove values from list properties of a user profile."""
        self.people_update({"$distinct_id": distinct_id, "$remove": properties}, meta=meta or {})

    def people_delete(self, distinct_id: Any, meta: Optional[Dict[str, Any]] = None) -> None:
        """Delete a user profile."""
        self.people_update({"$distinct_id": distinct_id, "$delete": ""}, meta=meta or None)

    def people_track_charge(
        self,
        distinct_id: Any,
        amount: float,
        properties: Optional[Dict[str, Any]] = None,
        meta: Optional[Dict[str, Any]] = None,
    ) -> None:
        """Append a charge of ``amount`` to the user profile's ``$transactions``."""
        if properties is None:
            properties = {}
        properties.update({"$amount": amount})
        self.people_append(distinct_id, {"$transactions": properties or {}}, meta=meta or {})

    def people_clear_charges(self, distinct_id: Any, meta: Optional[Dict[str, Any]] = None) -> None:
        """Delete all charges of a user profile."""
        self.people_unset(distinct_id, ["$transactions"], meta=meta or {})

    def people_update(self, message: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Send a user profile update built by the caller."""
        record: Dict[str, Any] = {"$token": self._token, "$time": self._now()}
        record.update(message)
        if meta:
            record.update(meta)
        self._consumer.send("people", json_dumps(record, cls=self._serializer))

    def group_set(self, group_key: str, group_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Set properties of a group profile."""
        self.group_update({"$group_key": group_key, "$group_id": group_id, "$set": properties}, meta=meta or {})

    def group_set_once(self, group_key: str, group_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Set properties of a group profile that are not yet set."""
        self.group_update({"$group_key": group_key, "$group_id": group_id, "$set_once": properties}, meta=meta or {})

    def group_union(self, group_key: str, group_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Merge values into list properties of a group profile."""
        self.group_update({"$group_key": group_key, "$group_id": group_id, "$union": properties}, meta=meta or {})

    def group_unset(self, group_key: str, group_id: Any, properties: List[str], meta: Optional[Dict[str, Any]] = None) -> None:
        """Delete properties of a group profile."""
        self.group_update({"$group_key": group_key, "$group_id": group_id, "$unset": properties}, meta=meta)

    def group_remove(self, group_key: str, group_id: Any, properties: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Remove values from list properties of a group profile."""
        self.group_update({"$group_key": group_key, "$group_id": group_id, "$remove": properties}, meta=meta or {})

    def group_delete(self, group_key: str, group_id: Any, meta: Optional[Dict[str, Any]] = None) -> None:
        """Delete a group profile."""
        self.group_update({"$group_key": group_key, "$group_id": group_id, "$delete": ""}, meta=meta or None)

    def group_update(self, message: Dict[str, Any], meta: Optional[Dict[str, Any]] = None) -> None:
        """Send a group profile update built by the caller."""
        record: Dict[str, Any] = {"$token": self._token, "$time": self._now()}
        record.update(message)
        if meta:
            record.update(meta)
        self._consumer.send("groups", json_dumps(record, cls=self._serializer))

    def __enter__(self) -> "Mixpanel":
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    async def __aenter__(self) -> "Mixpanel":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


__all__ = [
    "BufferedConsumer",
    "Consumer",
    "DatetimeSerializer",
    "Mixpanel",
    "MixpanelException",
    "ServiceAccountCredentials",
    "json_dumps",
]
