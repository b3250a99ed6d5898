"""The public constructor is type-checked: mypy --strict rejects wrong option names and types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TYPING_DIR = Path(__file__).parent / "typing"


def run_mypy(path: Path) -> "subprocess.CompletedProcess[str]":
    pytest.importorskip("mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir=/dev/null", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=TYPING_DIR,
    )


def test_mypy_accepts_valid_options() -> None:
    result = run_mypy(TYPING_DIR / "accepted_client_options.py")

    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_rejects_wrong_options() -> None:
    result = run_mypy(TYPING_DIR / "rejected_client_options.py")

    errors = [line for line in result.stdout.splitlines() if ": error: " in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert any(line.startswith("rejected_client_options.py:5:") and "api_hots" in line for line in errors)
    assert any(line.startswith("rejected_client_options.py:6:") and "batch_size" in line for line in errors)
    assert any(line.startswith("rejected_client_options.py:7:") and "on_drop" in line for line in errors)
    assert len(errors) == 3
