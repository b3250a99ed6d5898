"""Python values reach the wire by the documented mapping, or raise before anything is queued."""

from __future__ import annotations

import datetime
import decimal
import logging
import math
import time
import uuid
from typing import Any, Callable, Dict, Optional

import pytest

import groupscope
from conftest import Sink


def track_one(sink: Sink, client: groupscope.Client, value: Any) -> Any:
    client.track("Value Sent", {"value": value}, distinct_id="user-1")
    assert client.flush(timeout=10.0)
    return sink.wait_for(1)[-1]["properties"]["value"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        (False, False),
        (0, 0),
        (-(2**63), -(2**63)),
        (2**64 - 1, 2**64 - 1),
        (1.5, 1.5),
        ("text", "text"),
        ([1, "a", None], [1, "a", None]),
        ((1, 2), [1, 2]),
        (frozenset({"only"}), ["only"]),
        ({"nested": {"deeper": [1]}}, {"nested": {"deeper": [1]}}),
        (datetime.date(2026, 1, 2), "2026-01-02"),
        (datetime.datetime(2026, 1, 2, 3, 4, 5, 678901), "2026-01-02T03:04:05.678Z"),
        (datetime.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05.000Z"),
        (
            datetime.datetime(2026, 1, 2, 5, 4, 5, 1000, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
            "2026-01-02T03:04:05.001Z",
        ),
        (decimal.Decimal("42"), 42),
        (decimal.Decimal("19.99"), 19.99),
        (decimal.Decimal("0.1234567890123456789012345"), "0.1234567890123456789012345"),
        (decimal.Decimal("123456789012345678901234567890"), "123456789012345678901234567890"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    ],
)
def test_value_mapping(sink: Sink, make_client: Callable[..., groupscope.Client], value: Any, expected: Any) -> None:
    received = track_one(sink, make_client(), value)

    assert received == expected
    assert type(received) is type(expected)


def test_bool_stays_bool(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()
    client.track("Flags", {"yes": True, "one": 1}, distinct_id="user-1")
    assert client.flush(timeout=10.0)

    properties = sink.wait_for(1)[0]["properties"]
    assert properties["yes"] is True
    assert properties["one"] == 1
    assert properties["one"] is not True


def test_set_becomes_list(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    received = track_one(sink, make_client(), {3, 1, 2})

    assert sorted(received) == [1, 2, 3]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, decimal.Decimal("NaN"), decimal.Decimal("-Infinity")])
def test_non_finite_becomes_null_and_counted(
    sink: Sink, make_client: Callable[..., groupscope.Client], value: Any
) -> None:
    client = make_client()

    received = track_one(sink, client, [value, 1.0, {"inner": value}])

    assert received == [None, 1.0, {"inner": None}]
    assert client.stats().non_finite_replaced == 2


def test_lone_surrogate_sent_as_replacement(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()
    client.track("Bad \ud800 Name", {"key \udc00": "value \ud83d"}, distinct_id="user-1")
    assert client.flush(timeout=10.0)

    body = sink.raw_bodies[-1]
    body.decode("utf-8")  # raises if the body is not valid UTF-8
    event = sink.wait_for(1)[0]
    assert event["event"] == "Bad \ufffd Name"
    assert event["properties"]["key \ufffd"] == "value \ufffd"


@pytest.mark.parametrize(
    ("properties", "named"),
    [
        ({"payload": b"raw"}, '"payload"'),
        ({"plan": {"seats": [1, object()]}}, '"plan.seats[1]"'),
        ({"plan": {1: "one"}}, '"plan"'),
        ({"huge": 2**64}, '"huge"'),
        ({"when": datetime.time(12, 0)}, '"when"'),
    ],
)
def test_unmappable_value_raises_type_error(
    sink: Sink, make_client: Callable[..., groupscope.Client], properties: Any, named: str
) -> None:
    client = make_client()

    with pytest.raises(TypeError) as raised:
        client.track("Rejected", properties, distinct_id="user-1")

    assert named in str(raised.value)
    assert isinstance(raised.value, groupscope.UnsupportedValueError)
    assert client.stats().enqueued == 0


def test_rejected_call_enqueues_nothing(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()
    client.track("Before", {"n": 1}, distinct_id="user-1")

    with pytest.raises(TypeError):
        client.track("Broken", {"good": 1, "bad": b"bytes"}, distinct_id="user-1")
    client.track("After", {"n": 2}, distinct_id="user-1")
    assert client.flush(timeout=10.0)

    names = [event["event"] for event in sink.wait_for(2)]
    assert names == ["Before", "After"]


def test_self_containing_list_rejected(make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()
    loop: list = []
    loop.append(loop)

    with pytest.raises(TypeError, match="nested deeper"):
        client.track("Loop", {"loop": loop}, distinct_id="user-1")


def test_properties_must_be_dict(make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()

    with pytest.raises(TypeError, match="properties must be a dict"):
        client.track("Wrong", ["not", "a", "dict"])  # type: ignore[arg-type]


def test_datetime_time_argument(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()
    # A recent time, because /track rejects events more than 5 days old.
    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    moment = now.replace(microsecond=678000)
    naive = moment.replace(tzinfo=None)

    client.track("Aware", distinct_id="user-1", time=moment)
    client.track("Naive", distinct_id="user-1", time=naive)
    client.track("Seconds", distinct_id="user-1", time=moment.timestamp())
    assert client.flush(timeout=10.0)

    times = {event["event"]: event["properties"]["time"] for event in sink.wait_for(3)}
    expected = int(moment.timestamp() * 1000)
    assert times == {"Aware": expected, "Naive": expected, "Seconds": expected}


def test_time_of_wrong_type_rejected(make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()

    with pytest.raises(TypeError, match="time must be a datetime"):
        client.track("Wrong", time="yesterday")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="time must be a datetime"):
        client.track("Wrong", time=True)


def test_uncompressed_body_keeps_unicode(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client(gzip=False)
    client.track("Unicode ✓", {"emoji": "😀", "quote": '"'}, distinct_id="user-1")
    assert client.flush(timeout=10.0)

    event = sink.wait_for(1)[0]
    assert event["event"] == "Unicode ✓"
    assert event["properties"]["emoji"] == "😀"
    assert event["properties"]["quote"] == '"'
    assert "Content-Encoding" not in sink.requests[0].headers


def test_huge_decimal_converts_quickly(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()

    started = time.monotonic()
    value = track_one(sink, client, decimal.Decimal("1E+1000000"))
    elapsed = time.monotonic() - started

    assert value == "1E+1000000"
    assert elapsed < 5.0


def test_decimal_subclass_with_other_constructor(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    class Price(decimal.Decimal):
        def __new__(cls, value: str, currency: str) -> "Price":
            return super().__new__(cls, value)

    client = make_client()

    assert track_one(sink, client, Price("19.99", "EUR")) == 19.99


def test_dict_changed_during_conversion(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    properties: Dict[str, Any] = {}

    class MutatingZone(datetime.tzinfo):
        def utcoffset(self, moment: Optional[datetime.datetime]) -> datetime.timedelta:
            properties[f"added-{len(properties)}"] = 1
            return datetime.timedelta(0)

        def dst(self, moment: Optional[datetime.datetime]) -> datetime.timedelta:
            return datetime.timedelta(0)

    properties["when"] = datetime.datetime(2026, 1, 2, tzinfo=MutatingZone())
    properties["after"] = "x"
    client = make_client()

    try:
        client.track("Mutated", properties, distinct_id="user-1")
    except BaseException as error:  # a pyo3 PanicException derives from BaseException only
        pytest.fail(f"track raised {type(error).__name__}: {error}")
    assert client.flush(timeout=10.0)

    sent = sink.wait_for(1)[-1]["properties"]
    assert sent["when"] == "2026-01-02T00:00:00.000Z"
    assert sent["after"] == "x"


def test_nan_warning_rate_limited(make_client: Callable[..., groupscope.Client], caplog: pytest.LogCaptureFixture) -> None:
    client = make_client()
    caplog.set_level(logging.WARNING, logger="groupscope")

    for _ in range(1000):
        client.track("NaN", {"value": math.nan}, distinct_id="user-1")
    client._forward_to_python()

    warnings = [record for record in caplog.records if "NaN" in record.getMessage() or "non-finite" in record.getMessage()]
    assert 1 <= len(warnings) <= 11
    assert client.stats().non_finite_replaced == 1000


def test_value_needing_python_code_after_plain_values(sink: Sink, make_client: Callable[..., groupscope.Client]) -> None:
    # The datetime is met after plain values were written, so the conversion starts over
    # on copies of the dicts; nothing may be written twice.
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5)
    properties = {"plain": "x", "nested": {"n": 1, "list": [1, {"when": moment}]}, "last": 2.5}
    client = make_client()

    client.track("Mixed", properties, distinct_id="user-1")
    assert client.flush(timeout=10.0)

    sent = sink.wait_for(1)[-1]["properties"]
    expected = {"plain": "x", "nested": {"n": 1, "list": [1, {"when": "2026-01-02T03:04:05.000Z"}]}, "last": 2.5}
    assert {name: sent[name] for name in expected} == expected


def test_event_limits_raise_before_anything_is_queued(make_client: Callable[..., groupscope.Client]) -> None:
    client = make_client()

    with pytest.raises(groupscope.InvalidPropertyError, match='"tags".*255 elements'):
        client.track("Long List", {"ok": 1, "tags": list(range(255))}, distinct_id="user-1")
    with pytest.raises(groupscope.InvalidPropertyError, match='"a".*nested more than 3'):
        client.track("Deep", {"a": {"b": {"c": {"d": {"e": 1}}}}}, distinct_id="user-1")
    with pytest.raises(groupscope.InvalidPropertyError, match="must not be empty"):
        client.track("Empty Name", {"": 1}, distinct_id="user-1")
    with pytest.raises(groupscope.InvalidPropertyError, match="256 properties.*fewer than 255"):
        client.track("Wide", {f"p{index}": index for index in range(250)}, distinct_id="user-1")

    assert client.stats().enqueued == 0
    client.track("Short List", {"tags": list(range(254)), "a": {"b": {"c": {"d": 1}}}}, distinct_id="user-1")
    assert client.stats().enqueued == 1
