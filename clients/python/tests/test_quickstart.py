"""`python -m stave.quickstart` against the test node."""

import subprocess
import sys


def test_quickstart_prints_ok(bootstrap):
    for _ in range(2):  # a second run finds the topic and the first run's records
        done = subprocess.run(
            [sys.executable, "-m", "stave.quickstart", "--bootstrap", bootstrap],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == "quickstart ok 100\n"


def test_quickstart_fails_with_a_message_when_nothing_listens():
    done = subprocess.run(
        [sys.executable, "-m", "stave.quickstart", "--bootstrap", "127.0.0.1:1", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "quickstart:" in done.stderr and "UNAVAILABLE" in done.stderr
