"""Calls that mypy --strict must reject; tests/test_typing.py checks each expected error."""

import groupscope

groupscope.Client("token", api_hots="http://127.0.0.1:8080")  # misspelt keyword
groupscope.Client("token", batch_size="fifty")  # wrong type
groupscope.Client("token", on_drop=42)  # not callable
