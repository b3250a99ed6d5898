"""The Client API against a loopback sink: delivery, groups, flush, shutdown, errors."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import groupscope
from conftest import Sink, sink_response

MakeClient = Callable[..., groupscope.Client]


def test_track_delivers_event(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()

    insert_id = client.track("Signed Up", {"plan": "pro"}, distinct_id="user-1")
    assert client.flush(timeout=10.0)

    event = sink.wait_for(1)[0]
    assert event["event"] == "Signed Up"
    assert event["properties"]["plan"] == "pro"
    assert event["properties"]["distinct_id"] == "user-1"
    assert event["properties"]["$insert_id"] == insert_id
    assert event["properties"]["token"] == "test-token"


def test_track_without_user(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()

    client.track("Option", distinct_id="")
    client.track("Property", {"distinct_id": ""})
    client.track("Null Property", {"distinct_id": None})
    client.track("Integer Property", {"distinct_id": 7})
    client.import_event("Import", distinct_id="", time=1700000000)
    assert client.flush(timeout=10.0)

    sent = {event["event"]: event["properties"] for event in sink.wait_for(4)}
    assert sent["Option"]["distinct_id"] == ""
    assert sent["Property"]["distinct_id"] == ""
    assert "distinct_id" in sent["Null Property"]
    assert sent["Null Property"]["distinct_id"] is None
    assert sent["Integer Property"]["distinct_id"] == 7
    assert sink.wait_for(1, "/import")[0]["properties"]["distinct_id"] == ""


def test_import_null_distinct_id_rejected(make_client: MakeClient) -> None:
    client = make_client()

    with pytest.raises(groupscope.InvalidDistinctIdError, match='pass "" for an event with no user'):
        client.import_event("Import", {"distinct_id": None}, time=1700000000)

    assert client.stats().enqueued == 0


def test_stats_count_delivery(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    for index in range(120):
        client.track("Counted", {"index": index}, distinct_id="user-1")

    assert client.flush(timeout=10.0)

    stats = client.stats()
    assert stats.enqueued == 120
    assert stats.delivered == 120
    assert stats.queued == 0
    assert stats.dropped == 0
    assert len(sink.events()) == 120
    assert max(len(request.records) for request in sink.requests) <= 50


def test_per_event_groups(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    client.set_group("company_id", "acme")

    client.track("Default", distinct_id="user-1")
    client.track("Override", distinct_id="user-1", groups={"company_id": ["beta", 7]})
    client.track("Removed", distinct_id="user-1", groups={"company_id": None})
    assert client.flush(timeout=10.0)

    events = {event["event"]: event["properties"] for event in sink.wait_for(3)}
    assert events["Default"]["company_id"] == ["acme"]
    assert events["Override"]["company_id"] == ["beta", "7"]
    assert "company_id" not in events["Removed"]


def test_group_super_properties(make_client: MakeClient) -> None:
    client = make_client()

    client.set_group("company_id", ["acme", 5])
    client.add_group("company_id", "5")
    client.add_group("company_id", "beta")
    client.remove_group("company_id", "acme")

    assert client.current_groups() == {"company_id": ["5", "beta"]}


def test_groups_context_adds_groups(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()

    with client.groups(company_id="acme"):
        client.track("Inside", distinct_id="user-1")
        with client.groups(team_id="red", company_id="beta"):
            client.track("Nested", distinct_id="user-1")
        client.track("Explicit", distinct_id="user-1", groups={"company_id": "gamma"})
    client.track("Outside", distinct_id="user-1")
    assert client.flush(timeout=10.0)

    events = {event["event"]: event["properties"] for event in sink.wait_for(4)}
    assert events["Inside"]["company_id"] == ["acme"]
    assert events["Nested"]["company_id"] == ["beta"]
    assert events["Nested"]["team_id"] == ["red"]
    assert events["Explicit"]["company_id"] == ["gamma"]
    assert "company_id" not in events["Outside"]


def test_groups_context_per_thread(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    barrier = threading.Barrier(4)

    def request(company: str) -> None:
        with client.groups(company_id=company):
            barrier.wait()
            for _ in range(25):
                client.track("Request", {"company": company}, distinct_id=f"user-{company}")

    threads = [threading.Thread(target=request, args=(f"c{index}",)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert client.flush(timeout=10.0)

    events = sink.wait_for(100)
    assert all(event["properties"]["company_id"] == [event["properties"]["company"]] for event in events)


def test_groups_context_per_asyncio_task(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()

    async def handler(company: str) -> None:
        with client.groups(company_id=company):
            await asyncio.sleep(0.01)
            client.track("Async Request", {"company": company}, distinct_id="user-1")

    async def main() -> None:
        await asyncio.gather(*(handler(f"c{index}") for index in range(10)))

    asyncio.run(main())
    assert client.flush(timeout=10.0)

    events = sink.wait_for(10)
    assert all(event["properties"]["company_id"] == [event["properties"]["company"]] for event in events)


def test_groups_context_rejects_bad_id(make_client: MakeClient) -> None:
    client = make_client()

    with pytest.raises(groupscope.InvalidGroupIdError, match="company_id"):
        client.groups(company_id=1.5)


def test_group_handle_operations(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    group = client.group("company_id", "acme")

    group.set({"plan": "enterprise"})
    group.set_once({"created": "2026-01-01"})
    group.unset(["legacy"])
    group.union({"regions": ["eu", "us"]})
    group.remove({"regions": "us"})
    group.delete()
    assert client.flush(timeout=10.0)

    records = sink.wait_for(6, "/groups")
    assert [record["$group_key"] for record in records] == ["company_id"] * 6
    assert [record["$group_id"] for record in records] == ["acme"] * 6
    operations = [next(key for key in record if key in {"$set", "$set_once", "$unset", "$union", "$remove", "$delete"}) for record in records]
    assert operations == ["$set", "$set_once", "$unset", "$union", "$remove", "$delete"]
    assert records[0]["$set"] == {"plan": "enterprise"}
    assert (group.key, group.id) == ("company_id", "acme")


def test_group_id_int_normalised(make_client: MakeClient) -> None:
    client = make_client()

    assert client.group("company_id", 5).id == "5"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda client: client.track(""), groupscope.InvalidEventNameError),
        (lambda client: client.set_group("", "acme"), groupscope.InvalidGroupKeyError),
        (lambda client: client.set_group("company_id", ""), groupscope.InvalidGroupIdError),
        (lambda client: client.group("company_id", True), groupscope.InvalidGroupIdError),
        (lambda client: client.identify(""), groupscope.InvalidDistinctIdError),
        (lambda client: client.track("Event", time=float("nan")), groupscope.InvalidTimeError),
    ],
)
def test_core_errors_mapped(make_client: MakeClient, call: Callable[[groupscope.Client], Any], error: type) -> None:
    client = make_client()

    with pytest.raises(error) as raised:
        call(client)

    assert isinstance(raised.value, groupscope.GroupscopeError)
    assert isinstance(raised.value, ValueError)
    assert client.stats().enqueued == 0


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"flush_interval": -1.0}, "flush_interval"),
        ({"request_timeout": float("inf")}, "request_timeout"),
        ({"on_drop": "not callable"}, "on_drop"),
        ({"exit_timeout": -1.0}, "exit_timeout"),
        ({"exit_timeout": float("inf")}, "exit_timeout"),
        ({"exit_timeout": None}, "exit_timeout"),
        ({"exit_timeout": "5"}, "exit_timeout"),
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": 10**30}, "batch_size"),
        ({"batch_size": "fifty"}, "batch_size"),
        ({"max_attempts_per_cycle": 2**40}, "max_attempts_per_cycle"),
    ],
)
def test_invalid_config_named(make_client: MakeClient, options: Dict[str, Any], named: str) -> None:
    with pytest.raises(groupscope.InvalidConfigError, match=named):
        make_client(**options)


@pytest.mark.parametrize(("value", "expected"), [(0, "must be an int >= 1, got 0"), (-3, "must be an int >= 1, got -3"), (10**30, "at most")])
def test_invalid_count_message(make_client: MakeClient, value: int, expected: str) -> None:
    with pytest.raises(groupscope.InvalidConfigError, match=expected):
        make_client(batch_size=value)


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.track("Big", {"s": "x" * 1_100_000}),
        lambda client: client.group("company_id", "acme").set({"s": "x" * 1_100_000}),
        lambda client: client.engage("user-1", "$set", {"s": "x" * 1_100_000}),
    ],
    ids=["track", "group", "engage"],
)
def test_oversized_record_raises_at_call(make_client: MakeClient, call: Callable[[groupscope.Client], Any]) -> None:
    client = make_client()

    with pytest.raises(groupscope.InvalidPropertyError, match="1048576"):
        call(client)

    assert client.stats().enqueued == 0


def test_shutdown_idempotent_then_rejects(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    client.track("Last", distinct_id="user-1")

    assert client.shutdown(timeout=10.0)
    assert client.shutdown(timeout=10.0)

    assert len(sink.events()) == 1
    with pytest.raises(groupscope.ShutDownError):
        client.track("Too Late", distinct_id="user-1")


def test_context_manager_shuts_down(sink: Sink, make_client: MakeClient) -> None:
    with make_client() as client:
        client.track("Scoped", distinct_id="user-1")

    assert len(sink.events()) == 1
    with pytest.raises(groupscope.ShutDownError):
        client.track("After", distinct_id="user-1")


def test_flush_times_out_on_stalled_server(sink: Sink, make_client: MakeClient) -> None:
    client = make_client(request_timeout=5.0)
    sink.stalled.set()
    client.track("Stalled", distinct_id="user-1")

    assert client.flush(timeout=0.3) is False
    sink.released.set()


def test_retry_after_server_error(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    sink.responses.extend([sink_response(503), sink_response(500)])

    client.track("Retried", distinct_id="user-1")
    assert client.flush(timeout=10.0)

    assert [event["event"] for event in sink.events()] == ["Retried"]
    assert client.stats().retried >= 2


def test_on_drop_reports_rejected(sink: Sink, make_client: MakeClient) -> None:
    reports: List[groupscope.DropReport] = []
    client = make_client(on_drop=reports.append)
    sink.responses.append(sink_response(400, b'{"status":0,"error":"bad"}'))

    insert_id = client.track("Rejected", distinct_id="user-1")
    client.flush(timeout=10.0)

    assert [report.reason for report in reports] == ["rejected"]
    assert reports[0].count == 1
    assert reports[0].insert_ids == [insert_id]
    assert reports[0].status == 400
    assert client.stats().dropped_rejected == 1


def test_on_drop_exception_logged(sink: Sink, make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    def failing(report: groupscope.DropReport) -> None:
        raise RuntimeError("callback failed")

    client = make_client(on_drop=failing)
    sink.responses.append(sink_response(400, b'{"status":0,"error":"bad"}'))

    with caplog.at_level(logging.ERROR, logger="groupscope"):
        client.track("Rejected", distinct_id="user-1")
        client.flush(timeout=10.0)

    assert any("on_drop callback raised" in record.getMessage() for record in caplog.records)


def test_opt_out_stops_sending(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()

    client.opt_out()
    client.track("Hidden", distinct_id="user-1")
    client.flush(timeout=1.0)

    assert client.is_opted_out
    assert sink.events() == []
    client.opt_in()
    client.track("Visible", distinct_id="user-1")
    assert client.flush(timeout=10.0)
    assert [event["event"] for event in sink.events()] == ["Visible"]


def test_identify_persists_in_data_dir(sink: Sink, make_client: MakeClient, tmp_path: Path) -> None:
    first = make_client(data_dir=tmp_path)
    first.identify("user-42")
    first.set_group("company_id", "acme")
    first.shutdown(timeout=10.0)

    second = make_client(data_dir=str(tmp_path))

    assert second.distinct_id == "user-42"
    assert second.current_groups() == {"company_id": ["acme"]}


def test_core_logs_reach_python_logger(sink: Sink, make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client()
    sink.responses.append(sink_response(400, b'{"status":0,"error":"bad"}'))

    with caplog.at_level(logging.DEBUG, logger="groupscope"):
        groupscope.sync_log_level()
        client.track("Rejected", distinct_id="user-1")
        client.flush(timeout=10.0)

    assert any(record.name.startswith("groupscope") for record in caplog.records)
    assert all("test-token" not in record.getMessage() for record in caplog.records)


def test_flush_releases_gil(sink: Sink, make_client: MakeClient) -> None:
    client = make_client(request_timeout=5.0)
    sink.stalled.set()
    client.track("Stalled", distinct_id="user-1")
    ticks: List[int] = []
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    client.flush(timeout=0.5)
    done.set()
    counter.join()
    sink.released.set()

    assert len(ticks) > 50


def test_on_drop_reports_queue_full(sink: Sink, make_client: MakeClient) -> None:
    reports: List[groupscope.DropReport] = []
    client = make_client(on_drop=reports.append, max_queue_records=3, flush_interval=30.0)

    insert_ids = [client.track("Burst", {"index": index}, distinct_id="user-1") for index in range(5)]
    deadline = time.monotonic() + 10
    while client.stats().dropped_queue_full < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    client.stats()

    assert [report.reason for report in reports] == ["queue_full"] * len(reports)
    assert sum(report.count for report in reports) == 2
    assert [insert_id for report in reports for insert_id in report.insert_ids] == insert_ids[:2]
    assert client.stats().dropped_queue_full == 2


def test_invalid_token_named() -> None:
    with pytest.raises(groupscope.InvalidConfigError, match="token"):
        groupscope.Client(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda client: client.track(5), "event"),  # type: ignore[arg-type]
        (lambda client: client.track("Event", distinct_id=5), "distinct_id"),  # type: ignore[arg-type]
        (lambda client: client.identify(42), "distinct_id"),  # type: ignore[arg-type]
        (lambda client: client.track("Event", groups=["company_id"]), "groups"),  # type: ignore[arg-type]
        (lambda client: client.group("company_id", "acme").unset(1), "names"),  # type: ignore[arg-type]
        (lambda client: client.group("company_id", "acme").unset(["plan", 1]), "names"),  # type: ignore[list-item]
    ],
)
def test_argument_type_errors_named(make_client: MakeClient, call: Callable[[groupscope.Client], Any], named: str) -> None:
    client = make_client()

    with pytest.raises(TypeError, match=f"^{named} must be a"):
        call(client)


@pytest.mark.parametrize("timeout", [None, -1.0, float("inf"), float("nan"), "5"])
def test_invalid_timeout_is_groupscope_error(make_client: MakeClient, timeout: Any) -> None:
    client = make_client()

    with pytest.raises(groupscope.InvalidArgumentError, match="timeout"):
        client.flush(timeout=timeout)
    with pytest.raises(groupscope.InvalidArgumentError, match="timeout"):
        client.shutdown(timeout=timeout)
    assert issubclass(groupscope.InvalidArgumentError, groupscope.GroupscopeError)
    assert issubclass(groupscope.InvalidArgumentError, ValueError)


def test_default_queue_cap_above_100000(sink: Sink, make_client: MakeClient) -> None:
    # With the stalled server, every record stays queued, so a cap of 100,000 would drop one.
    client = make_client(flush_interval=30.0, request_timeout=30.0)
    sink.stalled.set()

    for index in range(100_001):
        client.track("Burst", {"index": index}, distinct_id="user-1")

    assert client.stats().dropped_queue_full == 0
    client.opt_out()
    sink.released.set()


def test_shared_group_context_across_tasks(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    tenant = client.groups(company_id="acme")
    finished: List[str] = []

    async def handler(name: str, delay: float) -> None:
        with tenant:
            await asyncio.sleep(delay)
            client.track("Shared", {"task": name}, distinct_id="user-1")
        client.track("After", {"task": name}, distinct_id="user-1")
        finished.append(name)

    async def main() -> None:
        await asyncio.gather(handler("a", 0.05), handler("b", 0.01))

    asyncio.run(main())
    assert client.flush(timeout=10.0)

    assert sorted(finished) == ["a", "b"]
    events = sink.wait_for(4)
    for event in events:
        if event["event"] == "Shared":
            assert event["properties"]["company_id"] == ["acme"]
        else:
            assert "company_id" not in event["properties"]


def test_group_context_reused_and_nested(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    tenant = client.groups(company_id="acme")

    with tenant:
        with tenant:
            client.track("Inner", distinct_id="user-1")
        client.track("Outer", distinct_id="user-1")
    with tenant:
        client.track("Again", distinct_id="user-1")
    client.track("Outside", distinct_id="user-1")
    assert client.flush(timeout=10.0)

    groups = {event["event"]: event["properties"].get("company_id") for event in sink.wait_for(4)}
    assert groups == {"Inner": ["acme"], "Outer": ["acme"], "Again": ["acme"], "Outside": None}


def test_group_context_exit_in_other_task(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    tenant = client.groups(company_id="leak")

    async def exit_elsewhere() -> None:
        tenant.__exit__(None, None, None)

    async def main() -> None:
        tenant.__enter__()
        with pytest.raises(RuntimeError, match="exit it in the thread or task that entered it"):
            await asyncio.create_task(exit_elsewhere())
        tenant.__exit__(None, None, None)
        client.track("After Exit", distinct_id="user-1")

    asyncio.run(main())
    assert client.flush(timeout=10.0)

    assert "company_id" not in sink.wait_for(1)[-1]["properties"]


def test_engage_delivers_profile_update(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()

    client.engage("user-1", "$set", {"plan": "pro"})
    client.engage("user-1", "$unset", ["old"])
    assert client.flush(timeout=10.0)

    records = sink.wait_for(2, "/engage")
    assert records[0]["$distinct_id"] == "user-1"
    assert records[0]["$set"] == {"plan": "pro"}
    assert records[1]["$unset"] == ["old"]


def test_engage_rejects_unknown_operation(make_client: MakeClient) -> None:
    client = make_client()

    with pytest.raises(groupscope.InvalidArgumentError, match=r"\$set_once"):
        client.engage("user-1", "$increment", {"a": 1})


def test_group_sources_most_specific_wins(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    client.set_group("team_id", ["t1", "t2"])

    with client.groups(team_id="context-team", company_id="acme"):
        client.track("Context", distinct_id="u")
        client.track("Call", distinct_id="u", groups={"team_id": "call-team"})
        with client.groups(team_id="inner-team"):
            client.track("Inner", distinct_id="u")
    client.track("Super", distinct_id="u")
    assert client.flush(timeout=10.0)

    events = {event["event"]: event["properties"] for event in sink.wait_for(4)}
    assert events["Context"]["team_id"] == ["context-team"]
    assert events["Context"]["company_id"] == ["acme"]
    assert events["Call"]["team_id"] == ["call-team"]
    assert events["Call"]["company_id"] == ["acme"]
    assert events["Inner"]["team_id"] == ["inner-team"]
    assert events["Inner"]["company_id"] == ["acme"]
    assert events["Super"]["team_id"] == ["t1", "t2"]
    assert "company_id" not in events["Super"]
