"""End to end against groupscope-server on 127.0.0.1: attribution, profiles, faults, workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Iterator, List

import pytest

import groupscope
import groupscope.mixpanel as dropin
from conftest import ReferenceServer
from test_process import APP, FORK_WARNING, free_port


@pytest.fixture
def client(reference_server: ReferenceServer) -> Iterator[groupscope.Client]:
    reference_server.post_json("/api/group-keys", {"property": "company_id", "display_name": "Company"})
    client = groupscope.Client(
        "server-token",
        api_host=reference_server.url,
        flush_interval=0.05,
        initial_retry_delay=0.05,
        max_retry_delay=0.2,
    )
    yield client
    client.shutdown(timeout=5.0)


def test_event_attributed_to_group(reference_server: ReferenceServer, client: groupscope.Client) -> None:
    with client.groups(company_id="acme"):
        client.track("Report Exported", {"format": "csv"}, distinct_id="user-42")
    assert client.flush(timeout=10.0)

    events = reference_server.events(event="Report Exported")
    assert len(events) == 1
    assert events[0]["distinct_id"] == "user-42"
    assert events[0]["properties"]["format"] == "csv"
    assert {"key": "company_id", "id": "acme"} in [
        {"key": pair["key"], "id": pair["id"]} for pair in events[0]["attribution"]["groups"]
    ]


def test_group_profile_set(reference_server: ReferenceServer, client: groupscope.Client) -> None:
    client.group("company_id", "acme").set({"plan": "enterprise", "seats": 12})
    client.group("company_id", "acme").union({"regions": ["eu"]})
    assert client.flush(timeout=10.0)

    group = reference_server.get_json("/api/groups/company_id/acme")
    assert group["profile"]["properties"]["plan"] == "enterprise"
    assert group["profile"]["properties"]["seats"] == 12
    assert group["profile"]["properties"]["regions"] == ["eu"]


def test_retries_through_scripted_faults(reference_server: ReferenceServer, client: groupscope.Client) -> None:
    reference_server.post_json(
        "/api/faults",
        {"endpoint": "track", "responses": [{"status": 503}, {"status": 429, "retry_after": 0}]},
    )

    client.track("Survives Faults", distinct_id="user-1")
    assert client.flush(timeout=20.0)

    assert len(reference_server.events(event="Survives Faults")) == 1
    assert client.stats().retried >= 2
    assert client.stats().delivered == 1


def test_mixpanel_dropin_against_server(reference_server: ReferenceServer) -> None:
    consumer = dropin.BufferedConsumer(api_host=reference_server.url)
    mp = dropin.Mixpanel("server-token", consumer=consumer)

    mp.track("user-7", "Signed Up", {"plan": "pro"})
    mp.group_set("company_id", "acme", {"plan": "enterprise"})
    mp.people_set("user-7", {"name": "Ada"})
    assert consumer.flush(timeout=10.0)

    events = reference_server.events(event="Signed Up")
    assert [event["distinct_id"] for event in events] == ["user-7"]
    assert reference_server.get_json("/api/groups/company_id/acme")["profile"]["properties"]["plan"] == "enterprise"
    assert reference_server.get_json("/api/users/user-7")["profile"]["properties"]["name"] == "Ada"


def test_mixpanel_dropin_distinct_ids_stored(reference_server: ReferenceServer) -> None:
    consumer = dropin.Consumer(api_host=reference_server.url)
    mp = dropin.Mixpanel("server-token", consumer=consumer)

    mp.track("", "Account Event", {"source": "empty"})
    mp.track(None, "Account Event", {"source": "none"})
    mp.track(7, "Account Event", {"source": "int"})
    assert consumer.flush(timeout=10.0)

    events = reference_server.events(event="Account Event")
    stored = {event["properties"]["source"]: event["distinct_id"] for event in events}
    assert stored == {"empty": "", "none": "", "int": "7"}


def test_gunicorn_preload_against_server(reference_server: ReferenceServer, tmp_path: Path) -> None:
    (tmp_path / "analytics_app.py").write_text(APP)
    port = free_port()
    environment = dict(os.environ, COLLECTOR_URL=reference_server.url, PYTHONPATH=str(tmp_path))
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}", "analytics_app:app"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    replies = []
    try:
        deadline = time.monotonic() + 20
        while len(replies) < 20 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                    replies.append(response.read().decode())
            except OSError:
                time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)

    assert len(replies) == 20
    assert all(reply.endswith("True") for reply in replies)
    requests = reference_server.events(event="Request")
    assert len(requests) == 20
    assert len(reference_server.events(event="App Loaded")) == 1
    assert max(Counter(event["insert_id"] for event in requests).values()) == 1


# The parent's client, which forked processes inherit through fork() instead of pickling.
FORKED_CLIENTS: List[groupscope.Client] = []


def track_for_company(index: int) -> bool:
    client = FORKED_CLIENTS[0]
    for number in range(10):
        client.track("Forked Event", {"number": number}, distinct_id=f"user-{index}", groups={"company_id": f"company-{index}"})
    return client.flush(timeout=10.0)


@pytest.mark.filterwarnings(FORK_WARNING)
def test_fork_and_pool_against_server(reference_server: ReferenceServer, client: groupscope.Client) -> None:
    client.track("Before Fork", distinct_id="parent", groups={"company_id": "parent-co"})
    FORKED_CLIENTS[:] = [client]

    pid = os.fork()
    if pid == 0:
        exit_code = 1
        try:
            exit_code = 0 if track_for_company(0) else 2
        finally:
            os._exit(exit_code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(track_for_company, range(1, 5))
    FORKED_CLIENTS.clear()
    assert results == [True, True, True, True]
    assert client.flush(timeout=10.0)

    assert len(reference_server.events(event="Before Fork")) == 1
    forked = reference_server.events(event="Forked Event")
    assert len(forked) == 50
    assert max(Counter(event["insert_id"] for event in forked).values()) == 1
    for index in range(5):
        group = reference_server.get_json(f"/api/groups/company_id/company-{index}")
        assert group["event_count"] == 10, f"company-{index}"
        assert group["unique_users"] == 1, f"company-{index}"
