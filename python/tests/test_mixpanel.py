"""groupscope.mixpanel against the mixpanel package: same messages, same public behaviour."""

from __future__ import annotations

import datetime
import decimal
import json
import logging
from typing import Any, Callable, Dict, List, Tuple
from unittest import mock

import pytest

import groupscope.mixpanel as dropin
from conftest import Sink

mixpanel = pytest.importorskip("mixpanel")


class RecordingConsumer:
    """A custom consumer, as application tests write them."""

    def __init__(self) -> None:
        self.sent: List[Tuple[Any, ...]] = []

    def send(self, endpoint: str, json_message: str, *args: Any) -> None:
        self.sent.append((endpoint, json.loads(json_message), args))


def exercise(client: Any) -> None:
    """Call every public recording method the two packages share."""
    client.track("user-1", "Signed Up", {"plan": "pro", "when": datetime.datetime(2026, 1, 2, 3, 4, 5)})
    client.track("user-1", "With Meta", {"a": 1}, meta={"ip": "1.2.3.4"})
    client.import_data("key", "user-1", "Imported", 1700000000, {"b": 2}, api_secret="secret")
    client.merge("key", "user-1", "user-2", api_secret="secret")
    client.people_set("user-1", {"name": "Ada"})
    client.people_set_once("user-1", {"first": True})
    client.people_increment("user-1", {"logins": 1})
    client.people_append("user-1", {"tags": "x"})
    client.people_union("user-1", {"tags": ["x", "y"]})
    client.people_unset("user-1", ["old"])
    client.people_remove("user-1", {"tags": "x"})
    client.people_delete("user-1")
    client.people_track_charge("user-1", 9.5, {"sku": "A"})
    client.people_clear_charges("user-1")
    client.people_update({"$distinct_id": "user-1", "$set": {"raw": 1}})
    client.group_set("company_id", "acme", {"plan": "enterprise"})
    client.group_set_once("company_id", "acme", {"founded": 1999})
    client.group_union("company_id", "acme", {"regions": ["eu"]})
    client.group_unset("company_id", "acme", ["legacy"])
    client.group_remove("company_id", "acme", {"regions": "us"})
    client.group_delete("company_id", "acme")
    client.group_update({"$group_key": "company_id", "$group_id": "acme", "$set": {"raw": 1}})


def recorded_messages(cls: Any) -> List[Tuple[Any, ...]]:
    consumer = RecordingConsumer()
    with mock.patch.object(cls, "_now", return_value=1700000000.5), mock.patch.object(
        cls, "_make_insert_id", return_value="abcdef0123456789abcdef0123456789"
    ):
        exercise(cls("project-token", consumer=consumer))
    return consumer.sent


def test_custom_consumer_gets_same_messages() -> None:
    expected = recorded_messages(mixpanel.Mixpanel)
    actual = recorded_messages(dropin.Mixpanel)

    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert got == want


def test_lib_version_matches_mixpanel_package() -> None:
    assert dropin.__version__ == mixpanel.__version__


def test_alias_goes_through_consumer() -> None:
    consumer = RecordingConsumer()

    dropin.Mixpanel("project-token", consumer=consumer).alias("new-id", "old-id")

    assert consumer.sent == [
        ("events", {"event": "$create_alias", "properties": {"distinct_id": "old-id", "alias": "new-id", "token": "project-token"}}, ())
    ]


def test_buffered_consumer_delivers_through_core(sink: Sink) -> None:
    consumer = dropin.BufferedConsumer(api_host=sink.url)
    client = dropin.Mixpanel("project-token", consumer=consumer)

    client.track("user-1", "Signed Up", {"plan": "pro"})
    client.track("user-1", "With Meta", meta={"ip": "1"})
    client.import_data(None, "user-1", "Imported", 1700000000, {"n": 1}, api_secret="secret")
    client.group_set("company_id", "acme", {"plan": "enterprise"})
    client.group_delete("company_id", "acme")
    client.people_set("user-1", {"name": "Ada"})
    assert consumer.flush(timeout=10.0)

    events = {event["event"]: event["properties"] for event in sink.wait_for(2)}
    assert events["Signed Up"]["distinct_id"] == "user-1"
    assert events["Signed Up"]["plan"] == "pro"
    assert events["Signed Up"]["token"] == "project-token"
    assert "With Meta" in events
    assert sink.wait_for(1, "/import")[0]["event"] == "Imported"
    groups = sink.wait_for(2, "/groups")
    assert groups[0]["$set"] == {"plan": "enterprise"}
    assert "$delete" in groups[1]
    people = sink.wait_for(1, "/engage")
    assert people[0]["$set"] == {"name": "Ada"}
    assert people[0]["$distinct_id"] == "user-1"


def test_consumer_with_events_url(sink: Sink) -> None:
    consumer = dropin.Consumer(events_url=f"{sink.url}/track")
    client = dropin.Mixpanel("project-token", consumer=consumer)

    client.track("user-1", "Via Events Url")
    assert consumer.flush(timeout=10.0)

    assert sink.wait_for(1)[0]["event"] == "Via Events Url"


def test_patched_now_uses_message_path(sink: Sink) -> None:
    consumer = dropin.BufferedConsumer(api_host=sink.url)
    client = dropin.Mixpanel("project-token", consumer=consumer)

    with mock.patch.object(client, "_make_insert_id", return_value="fixed-insert-id"):
        client.track("user-1", "Patched")
    assert consumer.flush(timeout=10.0)

    assert sink.wait_for(1)[0]["properties"]["$insert_id"] == "fixed-insert-id"


@pytest.mark.parametrize("consumer_class", [dropin.Consumer, dropin.BufferedConsumer])
def test_unknown_endpoint_raises(consumer_class: Callable[..., Any]) -> None:
    consumer = consumer_class(api_host="127.0.0.1:9")

    with pytest.raises(dropin.MixpanelException, match="No such endpoint"):
        consumer.send("nowhere", "{}")


def test_mixpanel_package_unknown_endpoint_raises_alike() -> None:
    with pytest.raises(mixpanel.MixpanelException, match="No such endpoint"):
        mixpanel.BufferedConsumer(api_host="127.0.0.1:9").send("nowhere", "{}")


def test_unserialisable_property_raises_type_error(sink: Sink) -> None:
    client = dropin.Mixpanel("project-token", consumer=dropin.BufferedConsumer(api_host=sink.url))

    with pytest.raises(TypeError):
        client.track("user-1", "Bad", {"raw": b"bytes"})
    with pytest.raises(TypeError):
        mixpanel.Mixpanel("project-token", consumer=RecordingConsumer()).track("user-1", "Bad", {"raw": b"bytes"})


def test_invalid_event_raises_mixpanel_exception(sink: Sink) -> None:
    client = dropin.Mixpanel("project-token", consumer=dropin.BufferedConsumer(api_host=sink.url))

    with pytest.raises(dropin.MixpanelException, match="event name"):
        client.track("user-1", "")


def test_feature_flags_rejected() -> None:
    with pytest.raises(dropin.MixpanelException, match="feature flags"):
        dropin.Mixpanel("project-token", consumer=RecordingConsumer(), local_flags_config=object())


def test_buffered_consumer_caps_max_size() -> None:
    assert dropin.BufferedConsumer(max_size=500, api_host="127.0.0.1:9")._batch_size == 50


def test_consumer_delivers_profile_update_without_flush(sink: Sink) -> None:
    consumer = dropin.Consumer(events_url=f"{sink.url}/track", people_url=f"{sink.url}/engage")
    client = dropin.Mixpanel("project-token", consumer=consumer)

    client.people_set("user-1", {"plan": "pro"})
    client.people_increment("user-1", {"logins": 2})

    people = sink.wait_for(2, "/engage")
    assert people[0]["$distinct_id"] == "user-1"
    assert people[0]["$set"] == {"plan": "pro"}
    assert people[1]["$add"] == {"logins": 2}


def test_track_datetime_in_mixpanel_format(sink: Sink) -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000)
    consumer = dropin.Consumer(api_host=sink.url)
    official = RecordingConsumer()

    dropin.Mixpanel("project-token", consumer=consumer).track("user-1", "Dated", {"when": moment, "nested": [moment]})
    mixpanel.Mixpanel("project-token", consumer=official).track("user-1", "Dated", {"when": moment, "nested": [moment]})
    assert consumer.flush(timeout=10.0)

    sent = sink.wait_for(1)[0]["properties"]
    expected = official.sent[0][1]["properties"]
    assert sent["when"] == expected["when"] == "2026-01-02T03:04:05"
    assert sent["nested"] == expected["nested"]


@pytest.mark.parametrize("value", [decimal.Decimal("1.5"), {1, 2}])
def test_decimal_and_set_raise_like_mixpanel(sink: Sink, value: Any) -> None:
    client = dropin.Mixpanel("project-token", consumer=dropin.Consumer(api_host=sink.url))

    with pytest.raises(TypeError):
        mixpanel.Mixpanel("project-token", consumer=RecordingConsumer()).track("user-1", "Bad", {"value": value})
    with pytest.raises(TypeError):
        client.track("user-1", "Bad", {"value": value})


def test_import_without_credentials_raises(sink: Sink) -> None:
    client = dropin.Mixpanel("project-token", consumer=dropin.Consumer(api_host=sink.url))

    with pytest.raises(dropin.MixpanelException, match="credentials"):
        client.import_data(None, "user-1", "Imported", 1700000000)


def test_import_with_service_account_credentials(sink: Sink) -> None:
    credentials = dropin.ServiceAccountCredentials("user", "secret", "123")
    consumer = dropin.Consumer(api_host=sink.url, credentials=credentials)
    client = dropin.Mixpanel("project-token", consumer=consumer)

    client.import_data(None, "user-1", "Imported", 1700000000)
    assert consumer.flush(timeout=10.0)

    assert sink.wait_for(1, "/import")[0]["event"] == "Imported"


def warnings_of(caplog: pytest.LogCaptureFixture, logger: str) -> List[str]:
    return [record.getMessage() for record in caplog.records if record.name == logger and record.levelno == logging.WARNING]


def test_deprecated_keys_logged_like_mixpanel(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    for package in (mixpanel, dropin):
        client = package.Mixpanel("project-token", consumer=RecordingConsumer())
        client.import_data("key", "user-1", "Imported", 1700000000, api_secret="secret")
        client.merge("key", "user-1", "user-2", api_secret="secret")
        client.import_data(None, "user-1", "Imported", 1700000000)

    official = warnings_of(caplog, "mixpanel")
    ours = warnings_of(caplog, "groupscope.mixpanel")
    assert len(official) == 4
    assert len(ours) == 4
    assert all("api_secret" in message for message in ours[0::2])
    assert all("api_key" in message for message in ours[1::2])


def test_credentials_with_custom_consumer_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    credentials = dropin.ServiceAccountCredentials("user", "secret", "123")

    mixpanel.Mixpanel("project-token", consumer=RecordingConsumer(), credentials=credentials)
    dropin.Mixpanel("project-token", consumer=RecordingConsumer(), credentials=credentials)

    assert len(warnings_of(caplog, "mixpanel")) == 1
    assert len(warnings_of(caplog, "groupscope.mixpanel")) == 1


def official_event(call: Callable[[Any], None]) -> Dict[str, Any]:
    """Return the one event message the ``mixpanel`` package builds for ``call``."""
    consumer = RecordingConsumer()
    call(mixpanel.Mixpanel("project-token", consumer=consumer))
    assert len(consumer.sent) == 1
    message: Dict[str, Any] = consumer.sent[0][1]
    return message


@pytest.mark.parametrize("distinct_id", ["", None, 7, "user-1"])
@pytest.mark.parametrize("meta", [None, {"ip": "0"}], ids=["direct", "message"])
def test_track_distinct_id_as_mixpanel_sends(sink: Sink, distinct_id: Any, meta: Any) -> None:
    consumer = dropin.Consumer(api_host=sink.url)

    def call(client: Any) -> None:
        client.track(distinct_id, "No User", {"plan": "pro"}, meta=meta)

    call(dropin.Mixpanel("project-token", consumer=consumer))
    assert consumer.flush(timeout=10.0)

    sent = sink.wait_for(1)[0]["properties"]
    expected = official_event(call)["properties"]
    assert "distinct_id" in sent
    assert sent["distinct_id"] == expected["distinct_id"]
    assert type(sent["distinct_id"]) is type(expected["distinct_id"])
    assert sent["plan"] == "pro"


@pytest.mark.parametrize("distinct_id", ["", 7])
def test_import_distinct_id_as_mixpanel_sends(sink: Sink, distinct_id: Any) -> None:
    credentials = dropin.ServiceAccountCredentials("user", "secret", "123")
    consumer = dropin.Consumer(api_host=sink.url, credentials=credentials)

    def call(client: Any) -> None:
        client.import_data(None, distinct_id, "Imported", 1700000000)

    call(dropin.Mixpanel("project-token", consumer=consumer))
    assert consumer.flush(timeout=10.0)

    sent = sink.wait_for(1, "/import")[0]["properties"]
    expected = official_event(call)["properties"]
    assert sent["distinct_id"] == expected["distinct_id"]
    assert type(sent["distinct_id"]) is type(expected["distinct_id"])


def test_distinct_id_property_wins_like_mixpanel(sink: Sink) -> None:
    consumer = dropin.Consumer(api_host=sink.url)

    def call(client: Any) -> None:
        client.track("user-1", "Overridden", {"distinct_id": "user-2"})

    call(dropin.Mixpanel("project-token", consumer=consumer))
    assert consumer.flush(timeout=10.0)

    assert official_event(call)["properties"]["distinct_id"] == "user-2"
    assert sink.wait_for(1)[0]["properties"]["distinct_id"] == "user-2"


@pytest.mark.parametrize(
    ("distinct_id", "named"),
    [
        ("undefined", 'distinct_id "undefined"'),
        (0, "distinct_id 0:"),
        ("  ", 'distinct_id "  "'),
        (True, "distinct_id true:"),
        (1.5, "distinct_id 1.5:"),
        (["user-1"], 'distinct_id ["user-1"]'),
    ],
)
def test_track_rejected_distinct_id_keeps_queue(sink: Sink, distinct_id: Any, named: str) -> None:
    consumer = dropin.Consumer(api_host=sink.url)
    client = dropin.Mixpanel("project-token", consumer=consumer)
    client.track("user-1", "Before")

    with pytest.raises(dropin.MixpanelException) as raised:
        client.track(distinct_id, "Rejected")
    assert consumer.flush(timeout=10.0)

    assert named in str(raised.value)
    assert "pass the user's" in str(raised.value)
    assert [event["event"] for event in sink.events()] == ["Before"]


def test_import_null_distinct_id_raises(sink: Sink) -> None:
    credentials = dropin.ServiceAccountCredentials("user", "secret", "123")
    consumer = dropin.Consumer(api_host=sink.url, credentials=credentials)
    client = dropin.Mixpanel("project-token", consumer=consumer)
    client.import_data(None, "user-1", "Before", 1700000000)

    with pytest.raises(dropin.MixpanelException) as raised:
        client.import_data(None, None, "Rejected", 1700000000)
    assert consumer.flush(timeout=10.0)

    assert "invalid distinct_id null" in str(raised.value)
    assert 'pass "" for an event with no user' in str(raised.value)
    assert [event["event"] for event in sink.records("/import")] == ["Before"]


@pytest.mark.parametrize(("distinct_id", "named"), [("", "\"\""), (None, "None"), (False, "False")])
def test_people_without_user_raises(sink: Sink, distinct_id: Any, named: str) -> None:
    consumer = dropin.Consumer(api_host=sink.url)
    client = dropin.Mixpanel("project-token", consumer=consumer)
    client.people_set("user-1", {"plan": "pro"})

    with pytest.raises(dropin.MixpanelException) as raised:
        client.people_set(distinct_id, {"plan": "free"})
    assert consumer.flush(timeout=10.0)

    assert f"distinct_id {named}" in str(raised.value)
    assert "pass the user's" in str(raised.value)
    assert [record["$distinct_id"] for record in sink.records("/engage")] == ["user-1"]


def test_people_int_distinct_id_sent_as_str(sink: Sink) -> None:
    consumer = dropin.Consumer(api_host=sink.url)

    dropin.Mixpanel("project-token", consumer=consumer).people_set(7, {"plan": "pro"})
    assert consumer.flush(timeout=10.0)

    assert sink.wait_for(1, "/engage")[0]["$distinct_id"] == "7"


def test_group_int_id_sent_as_str(sink: Sink) -> None:
    consumer = dropin.Consumer(api_host=sink.url)

    dropin.Mixpanel("project-token", consumer=consumer).group_set("company_id", 7, {"plan": "pro"})
    assert consumer.flush(timeout=10.0)

    assert sink.wait_for(1, "/groups")[0]["$group_id"] == "7"


@pytest.mark.parametrize(("group_id", "named"), [("", '""'), (None, "null")])
def test_group_without_id_raises(sink: Sink, group_id: Any, named: str) -> None:
    consumer = dropin.Consumer(api_host=sink.url)
    client = dropin.Mixpanel("project-token", consumer=consumer)

    with pytest.raises(dropin.MixpanelException) as raised:
        client.group_set("company_id", group_id, {"plan": "pro"})
    assert consumer.flush(timeout=10.0)

    assert f"group id {named}" in str(raised.value)
    assert sink.records("/groups") == []
