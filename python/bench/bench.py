"""Compare groupscope with the mixpanel, posthog and segment-analytics-python packages.

One run starts one counting sink (``sink.py``) on 127.0.0.1. For each SDK and each event
count, a fresh subprocess points the SDK at the sink and tracks N events with the same
properties from one thread. Then it flushes and waits until the sink counted all N events or
received none for ``--settle`` seconds. It reports:

* caller µs per track: wall time of the tracking loop divided by N (what the application
  thread pays);
* end-to-end events/s: N divided by the time from the first track until the sink counted the
  last event;
* dropped: N minus the events the sink counted;
* peak RSS of the SDK's process (``ru_maxrss``), in MiB.

Every SDK runs with its default batching and queue settings, so drops are what an application
would see. Usage (from the repository root, with the packages installed)::

    python python/bench/bench.py --events 100000 1000000
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

SDKS = ("groupscope", "mixpanel", "posthog", "segment")
PROPERTIES = {"plan": "pro", "seats": 12, "price": 9.99, "tags": ["a", "b"], "company_id": "acme"}


def sink_count(sink_url: str) -> int:
    with urllib.request.urlopen(f"{sink_url}/count", timeout=10) as response:
        return int(json.loads(response.read())["events"])


def reset_sink(sink_url: str) -> None:
    request = urllib.request.Request(f"{sink_url}/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def make_groupscope(sink_url: str) -> Tuple[Callable[[int], Any], Callable[[], None]]:
    import groupscope

    client = groupscope.Client("bench-token", api_host=sink_url)

    def track(index: int) -> None:
        client.track("Bench Event", PROPERTIES, distinct_id="user-1")

    def flush() -> None:
        client.flush(timeout=600.0)

    return track, flush


def make_mixpanel(sink_url: str) -> Tuple[Callable[[int], Any], Callable[[], None]]:
    import mixpanel

    consumer = mixpanel.BufferedConsumer(events_url=f"{sink_url}/track")
    client = mixpanel.Mixpanel("bench-token", consumer=consumer)

    def track(index: int) -> None:
        client.track("user-1", "Bench Event", PROPERTIES)

    return track, consumer.flush


def make_posthog(sink_url: str) -> Tuple[Callable[[int], Any], Callable[[], None]]:
    import posthog

    client = posthog.Posthog("bench-token", host=sink_url)

    def track(index: int) -> None:
        client.capture("Bench Event", distinct_id="user-1", properties=PROPERTIES)

    def flush() -> None:
        client.flush()
        client.shutdown()

    return track, flush


def make_segment(sink_url: str) -> Tuple[Callable[[int], Any], Callable[[], None]]:
    from segment.analytics import Client

    client = Client("bench-token", host=sink_url)

    def track(index: int) -> None:
        client.track("user-1", "Bench Event", PROPERTIES)

    def flush() -> None:
        client.flush()
        client.join()

    return track, flush


FACTORIES: Dict[str, Callable[[str], Tuple[Callable[[int], Any], Callable[[], None]]]] = {
    "groupscope": make_groupscope,
    "mixpanel": make_mixpanel,
    "posthog": make_posthog,
    "segment": make_segment,
}


def run_one(sdk: str, events: int, sink_url: str, settle: float) -> Dict[str, Any]:
    """Run one SDK in this process and return its measurements."""
    track, flush = FACTORIES[sdk](sink_url)
    reset_sink(sink_url)

    started = time.perf_counter()
    for index in range(events):
        track(index)
    tracked = time.perf_counter()
    flush()

    received = sink_count(sink_url)
    last_change = time.perf_counter()
    finished = last_change
    while received < events and time.perf_counter() - last_change < settle:
        time.sleep(0.01)
        now_received = sink_count(sink_url)
        if now_received != received:
            received = now_received
            last_change = time.perf_counter()
        finished = last_change
    finished = max(finished, time.perf_counter() if received >= events else finished)

    return {
        "sdk": sdk,
        "events": events,
        "caller_us": (tracked - started) / events * 1e6,
        "events_per_second": received / (finished - started),
        "dropped": events - received,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure_sink(sink_url: str, seconds: float = 3.0) -> float:
    """Return the events/s the sink accepts from one Python load generator (batches of 50)."""
    record = json.dumps({"event": "Bench Event", "properties": dict(PROPERTIES, token="bench-token", distinct_id="user-1")})
    body = gzip.compress(("[" + ",".join([record] * 50) + "]").encode())
    host_port = sink_url.split("://", 1)[1]
    connection = http.client.HTTPConnection(host_port, timeout=10)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    reset_sink(sink_url)
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        connection.request("POST", "/track", body=body, headers=headers)
        connection.getresponse().read()
    elapsed = time.perf_counter() - started
    connection.close()
    return sink_count(sink_url) / elapsed


def start_sink() -> Tuple[subprocess.Popen, str]:
    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("sink.py"))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    line = sink.stdout.readline().strip()
    if not line.startswith("listening on "):
        sink.kill()
        raise SystemExit(f"the sink did not start; its first output line was {line!r}")
    return sink, line[len("listening on "):]


def print_table(results: List[Dict[str, Any]], sink_rate: float) -> None:
    print()
    print(f"sink capacity (one Python load generator, batches of 50): {sink_rate:,.0f} events/s")
    print()
    print("| SDK | events | caller µs/track | end-to-end events/s | dropped | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for result in results:
        print(
            f"| {result['sdk']} | {result['events']:,} | {result['caller_us']:.2f} | "
            f"{result['events_per_second']:,.0f} | {result['dropped']:,} | {result['peak_rss_mib']:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000], help="event counts to run")
    parser.add_argument("--sdks", nargs="+", choices=SDKS, default=list(SDKS), help="SDKs to compare")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds without new events before counting the rest as dropped")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--run", choices=SDKS, help=argparse.SUPPRESS)
    parser.add_argument("--sink-url", help=argparse.SUPPRESS)
    arguments = parser.parse_args()

    if arguments.run:
        result = run_one(arguments.run, arguments.events[0], arguments.sink_url, arguments.settle)
        print(json.dumps(result), flush=True)
        os._exit(0)  # skips the SDKs' exit hooks, which could block on an unreachable queue

    sink, sink_url = start_sink()
    try:
        sink_rate = measure_sink(sink_url)
        results = []
        for events in arguments.events:
            for sdk in arguments.sdks:
                output = subprocess.run(
                    [sys.executable, __file__, "--run", sdk, "--events", str(events), "--sink-url", sink_url, "--settle", str(arguments.settle)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                result = json.loads(output.strip().splitlines()[-1])
                results.append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
    finally:
        sink.terminate()
        sink.wait()

    print_table(results, sink_rate)
    if arguments.json:
        arguments.json.write_text(json.dumps({"sink_events_per_second": sink_rate, "results": results}, indent=2))


if __name__ == "__main__":
    main()
