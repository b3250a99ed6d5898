"""Sends events, user-profile and group-profile updates with the official `mixpanel`
Python package to a groupscope-server, then checks through the server's JSON API that they
arrived and were attributed to the right groups.

Usage: python mixpanel_python.py BASE_URL TOKEN SECRET
"""

import json
import sys
import time
import urllib.request

import mixpanel


def api(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return json.load(response)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def main():
    base, token, secret = sys.argv[1], sys.argv[2], sys.argv[3]
    consumer = mixpanel.Consumer(
        events_url=base + "/track",
        people_url=base + "/engage",
        groups_url=base + "/groups",
        import_url=base + "/import",
        request_timeout=10,
        retry_limit=0,
    )
    mp = mixpanel.Mixpanel(token, consumer=consumer)

    mp.track("py-user-1", "Report Exported", {"company_id": "py-acme", "format": "csv"})
    mp.track("py-user-2", "Report Exported", {"company_id": ["py-acme", "py-globex"]})
    mp.track("py-user-3", "Dashboard Viewed", {"company_id": 77})
    mp.track("py-user-4", "Dashboard Viewed", {"company_id": ""})
    mp.import_data(
        api_key=None,
        api_secret=secret,
        distinct_id="py-user-1",
        event_name="Invoice Paid",
        timestamp=time.time() - 10 * 86400,
        properties={"company_id": "py-acme"},
    )

    mp.people_set("py-user-1", {"$email": "one@example.com", "company_id": ["py-acme"]})
    mp.people_union("py-user-1", {"company_id": ["py-globex"]})

    mp.group_set("company_id", "py-acme", {"$name": "Py Acme", "plan": "pro", "legacy": True})
    mp.group_set_once("company_id", "py-acme", {"plan": "free", "founded": 2001})
    mp.group_union("company_id", "py-acme", {"regions": ["eu", "us"]})
    mp.group_remove("company_id", "py-acme", {"regions": "us"})
    mp.group_unset("company_id", "py-acme", ["legacy"])
    mp.group_set("company_id", "py-globex", {"$name": "Py Globex"})
    mp.group_delete("company_id", "py-globex")

    events = api(base, "/api/events?limit=1000")["events"]
    mine = {e["event"] + "/" + e["distinct_id"]: e for e in events if e["distinct_id"].startswith("py-")}
    check(len(mine) == 5, "expected 5 events from mixpanel-python, got %s" % sorted(mine))

    def groups(key):
        return [g["id"] for g in mine[key]["attribution"]["groups"]]

    check(groups("Report Exported/py-user-1") == ["py-acme"], groups("Report Exported/py-user-1"))
    check(groups("Report Exported/py-user-2") == ["py-acme", "py-globex"], groups("Report Exported/py-user-2"))
    check(groups("Dashboard Viewed/py-user-3") == ["77"], groups("Dashboard Viewed/py-user-3"))
    check(mine["Dashboard Viewed/py-user-3"]["attribution"]["warnings"][0]["code"] == "integer_id", "integer id warning")
    check(groups("Dashboard Viewed/py-user-4") == [], "an empty id attributes nothing")
    reason = mine["Dashboard Viewed/py-user-4"]["attribution"]["not_attributed"][0]["code"]
    check(reason == "empty_value", reason)
    check(mine["Invoice Paid/py-user-1"]["endpoint"] == "import", "import_data goes through /import")
    check(groups("Invoice Paid/py-user-1") == ["py-acme"], groups("Invoice Paid/py-user-1"))
    check(mine["Report Exported/py-user-1"]["properties"]["mp_lib"] == "python", "mp_lib")

    acme = api(base, "/api/groups/company_id/py-acme")
    expected = {"$name": "Py Acme", "plan": "pro", "founded": 2001, "regions": ["eu"]}
    check(acme["profile"]["properties"] == expected, acme["profile"])
    check(acme["event_count"] == 3, acme["event_count"])
    globex = api(base, "/api/groups/company_id/py-globex")
    check(globex["profile"] is None, "group_delete removed the py-globex profile: %s" % globex["profile"])

    user = api(base, "/api/users/py-user-1")
    check(user["groups"] == {"company_id": ["py-acme", "py-globex"]}, user["groups"])

    records = api(base, "/api/groups-records?group_key=company_id&group_id=py-acme")["records"]
    check(len(records) == 5, "expected 5 /groups records for py-acme, got %d" % len(records))
    print("mixpanel-python %s: 5 events, 2 user updates and 7 group updates arrived and were attributed" % mixpanel.__version__)


if __name__ == "__main__":
    main()
