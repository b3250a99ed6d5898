"""Runs the cross-language parity scenario of parity.rs from Python against a groupscope-server.

Usage: python parity.py http://127.0.0.1:PORT TOKEN DATA_DIR, with the groupscope package
installed. The Kotlin and Swift suites compare the records of this run with the Rust run's.
"""

import datetime
import decimal
import sys

import groupscope


def main() -> None:
    api_host, token, data_dir = sys.argv[1:4]
    if not api_host.startswith("http://127.0.0.1:"):
        raise SystemExit(f"the api host must be a loopback address, got {api_host}")

    client = groupscope.Client(token, api_host=api_host, data_dir=data_dir, flush_interval=0.0)
    client.identify("parity-user")
    client.set_group("company_id", ["acme", 7])
    client.add_group("team_id", "red")
    client.add_group("team_id", 5)
    client.add_group("team_id", "red")
    client.remove_group("company_id", 7)
    client.remove_group("company_id", "absent")
    client.register({"app": "parity"})

    client.track(
        "Parity Typed",
        {
            "text": "héllo \"quoted\" ✓",
            "count": 3,
            "negative": -42,
            "ratio": 0.25,
            "flag": False,
            "none": None,
            "at": datetime.datetime(2026, 12, 4, 20, 15, 30, 123456, tzinfo=datetime.timezone.utc),
            "day": datetime.date(2026, 12, 4),
            "price": decimal.Decimal("19.90"),
            "seats": decimal.Decimal("40.0"),
            "precise": decimal.Decimal("3.14159265358979323846264"),
            "bad": float("nan"),
            "list": ["a", 1, None],
            "nested": {"k": "v", "n": [1, 2]},
        },
    )
    client.track("Parity Groups", {}, groups={"company_id": ["globex", 9], "team_id": None})

    acme = client.group("company_id", "acme")
    acme.set({"plan": "enterprise", "seats": 40})
    acme.set_once({"founded": datetime.date(2026, 1, 2)})
    acme.unset(["seats"])
    acme.union({"tags": ["beta", "eu"]})
    acme.remove({"tags": "eu"})
    client.group("company_id", 9).delete()

    if not client.shutdown(10.0):
        raise SystemExit("shutdown timed out before every record was delivered")
    print(f"parity scenario delivered {client.stats().delivered} records")


if __name__ == "__main__":
    main()
