"""groupscope.mixpanel against the mixpanel package: same messages, same public behaviour."""

from __future__ import annotations

import datetime
import decimal
import json
import logging
from typing import Any, Callable, List, Tuple
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


@pytest.mark.parametrize("distinct_id", ["", None])
def test_unsendable_distinct_id_raises(sink: Sink, distinct_id: Any) -> None:
    client = dropin.Mixpanel("project-token", consumer=dropin.Consumer(api_host=sink.url))

    with pytest.raises(dropin.MixpanelException, match="distinct_id"):
        client.track(distinct_id, "Event")
