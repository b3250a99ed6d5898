"""Calls that mypy --strict must accept, so a failure of the rejected file is not a setup error."""

import groupscope

client = groupscope.Client(
    "token",
    api_host="http://127.0.0.1:8080",
    batch_size=50,
    flush_interval=0.5,
    on_drop=print,
    exit_timeout=2.0,
)
client.engage("user-1", "$set", {"plan": "pro"})
