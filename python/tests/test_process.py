"""Process lifecycle: fork, multiprocessing, gunicorn --preload and interpreter exit."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable, List, Optional

import pytest

import groupscope
from conftest import Sink

MakeClient = Callable[..., groupscope.Client]


def run_python(code: str, timeout: float = 30.0) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Python 3.12 and later warn when a process with threads forks; these tests fork on purpose.
FORK_WARNING = "ignore:This process .* is multi-threaded:DeprecationWarning"


@pytest.mark.filterwarnings(FORK_WARNING)
@pytest.mark.parametrize("durable", [False, True], ids=["memory", "data_dir"])
def test_fork_child_gets_working_client(sink: Sink, make_client: MakeClient, tmp_path: Path, durable: bool) -> None:
    client = make_client(flush_interval=30.0, data_dir=tmp_path if durable else None)
    client.track("Queued Before Fork", distinct_id="parent")

    pid = os.fork()
    if pid == 0:
        exit_code = 1
        try:
            client.track("From Child", distinct_id="child")
            exit_code = 0 if client.flush(timeout=10.0) else 2
        finally:
            os._exit(exit_code)

    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(timeout=10.0)

    names = Counter(event["event"] for event in sink.wait_for(2))
    assert names == {"Queued Before Fork": 1, "From Child": 1}


def wait_for_child(pid: int, timeout: float) -> Optional[int]:
    """Return the exit code of child ``pid``, or kill it and return None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.filterwarnings(FORK_WARNING)
def test_fork_while_threads_record_to_data_dir(sink: Sink, make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(data_dir=tmp_path)
    stop = threading.Event()

    def record() -> None:
        while not stop.is_set():
            client.track("Background", {"x": 1}, distinct_id="background")

    threads = [threading.Thread(target=record, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)

    exit_codes: List[Optional[int]] = []
    try:
        for _ in range(10):
            pid = os.fork()
            if pid == 0:
                exit_code = 1
                try:
                    client.track("From Child", distinct_id="child")
                    exit_code = 0 if client.flush(timeout=5.0) else 2
                finally:
                    os._exit(exit_code)
            exit_codes.append(wait_for_child(pid, timeout=10.0))
            if exit_codes[-1] is None:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert exit_codes == [0] * 10


def track_in_worker(index: int) -> bool:
    client = WORKER_CLIENTS[0]
    for number in range(20):
        client.track("Worker Event", {"worker": index, "number": number}, distinct_id=f"worker-{index}")
    return client.flush(timeout=10.0)


WORKER_CLIENTS: List[groupscope.Client] = []


@pytest.mark.filterwarnings(FORK_WARNING)
def test_multiprocessing_fork_workers(sink: Sink, make_client: MakeClient) -> None:
    client = make_client()
    client.track("Parent", distinct_id="parent")
    assert client.flush(timeout=10.0)
    WORKER_CLIENTS[:] = [client]

    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = pool.map(track_in_worker, range(4))
    WORKER_CLIENTS.clear()

    assert results == [True, True, True, True]
    events = sink.wait_for(81)
    keys = Counter((event["properties"].get("worker"), event["properties"].get("number")) for event in events)
    assert len(events) == 81
    assert max(keys.values()) == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


APP = '''
import os
import groupscope

client = groupscope.Client("gunicorn-token", api_host=os.environ["COLLECTOR_URL"], flush_interval=0.05)
client.track("App Loaded", distinct_id="master")

def app(environ, start_response):
    client.track("Request", {"pid": os.getpid()}, distinct_id="visitor")
    settled = client.flush(timeout=10.0)
    body = f"{os.getpid()} {settled}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.mark.skipif(shutil.which("gunicorn") is None and not Path(sys.executable).with_name("gunicorn").exists(), reason="gunicorn is not installed")
def test_gunicorn_preload_two_workers(sink: Sink, tmp_path: Path) -> None:
    (tmp_path / "analytics_app.py").write_text(APP)
    port = free_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    environment = dict(os.environ, COLLECTOR_URL=sink.url, PYTHONPATH=str(tmp_path))
    server = subprocess.Popen(
        [gunicorn, "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}", "analytics_app:app"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        replies = []
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
    events = sink.wait_for(21)
    names = Counter(event["event"] for event in events)
    assert names == {"App Loaded": 1, "Request": 20}
    insert_ids = Counter(event["properties"]["$insert_id"] for event in events)
    assert max(insert_ids.values()) == 1


def test_exit_without_tracking_is_clean(sink: Sink) -> None:
    started = time.monotonic()
    result = run_python(
        f"""
        import groupscope
        client = groupscope.Client("t", api_host={sink.url!r}, exit_timeout=2.0)
        """
    )

    assert result.returncode == 0
    assert result.stderr == ""
    assert time.monotonic() - started < 10


def test_exit_delivers_queued_events(sink: Sink) -> None:
    result = run_python(
        f"""
        import groupscope
        client = groupscope.Client("t", api_host={sink.url!r}, flush_interval=60.0, exit_timeout=5.0)
        for index in range(10):
            client.track("At Exit", {{"index": index}}, distinct_id="user-1")
        """
    )

    assert result.returncode == 0
    assert result.stderr == ""
    assert len(sink.wait_for(10)) == 10


def test_exit_with_stalled_network_is_bounded(sink: Sink) -> None:
    sink.stalled.set()
    result = run_python(
        f"""
        import atexit, sys, time
        import groupscope
        client = groupscope.Client("t", api_host={sink.url!r}, exit_timeout=1.0, request_timeout=30.0)
        client.track("Never Delivered", distinct_id="user-1")
        # Registered after groupscope's hook, so it runs first (atexit runs hooks in reverse).
        atexit.register(lambda: sys.stdout.write(repr(time.monotonic())))
        """
    )
    exited = time.monotonic()
    sink.released.set()

    assert result.returncode == 0
    assert result.stderr == ""
    # From the start of the exit hooks to the end of the process: exit_timeout plus the
    # interpreter's own teardown, which takes well under 0.5 s.
    assert exited - float(result.stdout) < 1.5


def test_exit_timeout_zero_with_stalled_network(sink: Sink) -> None:
    sink.stalled.set()
    result = run_python(
        f"""
        import atexit, sys, time
        import groupscope
        client = groupscope.Client("t", api_host={sink.url!r}, exit_timeout=0.0, request_timeout=30.0)
        client.track("Never Delivered", distinct_id="user-1")
        atexit.register(lambda: sys.stdout.write(repr(time.monotonic())))
        """
    )
    exited = time.monotonic()
    sink.released.set()

    assert result.returncode == 0
    assert result.stderr == ""
    assert exited - float(result.stdout) < 0.5


def test_daemon_thread_tracking_at_exit_is_quiet(sink: Sink) -> None:
    result = run_python(
        f"""
        import threading
        import groupscope
        client = groupscope.Client("t", api_host={sink.url!r}, exit_timeout=1.0)

        def keep_tracking():
            while True:
                client.track("Background", distinct_id="user-1")

        threading.Thread(target=keep_tracking, daemon=True).start()
        """
    )

    assert result.returncode == 0
    assert result.stderr == ""


def test_mixpanel_consumer_profile_update_delivered_at_exit(sink: Sink) -> None:
    result = run_python(
        f"""
        from groupscope.mixpanel import Consumer, Mixpanel
        url = {sink.url!r}
        mp = Mixpanel("t", consumer=Consumer(events_url=url + "/track", people_url=url + "/engage"))
        mp.people_set("exit-user", {{"plan": "pro"}})
        mp.track("exit-user", "Exit Event", {{}})
        """
    )

    assert result.returncode == 0
    assert result.stderr == ""
    assert sink.wait_for(1, "/engage")[0]["$set"] == {"plan": "pro"}
    assert sink.wait_for(1)[0]["event"] == "Exit Event"


def test_exit_after_shutdown_is_clean(sink: Sink) -> None:
    result = run_python(
        f"""
        import groupscope
        client = groupscope.Client("t", api_host={sink.url!r})
        client.track("Before Shutdown", distinct_id="user-1")
        assert client.shutdown(timeout=5.0)
        """
    )

    assert result.returncode == 0
    assert result.stderr == ""
    assert len(sink.wait_for(1)) == 1


def track_without_flush(index: int) -> None:
    WORKER_CLIENTS[0].track("Unflushed", {"worker": index}, distinct_id=f"worker-{index}")


@pytest.mark.filterwarnings(FORK_WARNING)
def test_multiprocessing_child_delivers_at_exit(sink: Sink, make_client: MakeClient) -> None:
    client = make_client(flush_interval=30.0)
    WORKER_CLIENTS[:] = [client]

    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=track_without_flush, args=(index,)) for index in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=20)
    # Pool workers leave the same way once the pool is closed and joined.
    pool = context.Pool(2)
    pool.map(track_without_flush, range(2, 6))
    pool.close()
    pool.join()
    WORKER_CLIENTS.clear()

    assert [process.exitcode for process in processes] == [0, 0]
    events = sink.wait_for(6)
    workers = sorted(event["properties"]["worker"] for event in events)
    assert workers == [0, 1, 2, 3, 4, 5]


def test_client_made_in_multiprocessing_child_delivers_at_exit(sink: Sink) -> None:
    code = f"""
        import multiprocessing
        import groupscope

        clients = []

        def work():
            client = groupscope.Client("child-token", api_host={sink.url!r}, flush_interval=30.0)
            client.track("Made In Child", distinct_id="child")
            clients.append(client)  # kept alive, so only the exit step can deliver the event

        if __name__ == "__main__":
            process = multiprocessing.get_context("fork").Process(target=work)
            process.start()
            process.join(timeout=20)
            raise SystemExit(process.exitcode)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [event["event"] for event in sink.wait_for(1)] == ["Made In Child"]
