"""Starts a real `stave server` for the suite (binary: $STAVE_BIN, else
<repo>/target/release/stave) on a free loopback port, and kills it at the end."""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import pytest

from stave._proto.stave.v1 import stave_pb2, stave_pb2_grpc

REPO = Path(__file__).resolve().parents[3]
_started: list[subprocess.Popen] = []


def _kill_leftovers() -> None:
    for proc in _started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


atexit.register(_kill_leftovers)


def stave_bin() -> Path:
    path = Path(os.environ.get("STAVE_BIN") or REPO / "target" / "release" / "stave")
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"no stave binary at {path}: build it (cargo build --release) or set STAVE_BIN",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StaveServer:
    """One `stave server` node: start, SIGKILL, start again on the same port and data."""

    def __init__(
        self, binary: Path, data_dir: Path, log_path: Path, metrics_listen: str = "off"
    ) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        # Suites run beside other nodes: none takes the default metrics port unless asked.
        self.metrics_listen = metrics_listen
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                "server",
                "--listen",
                self.bootstrap,
                "--data-dir",
                str(self.data_dir),
                "--metrics-listen",
                self.metrics_listen,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        _started.append(self.proc)
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with grpc.insecure_channel(self.bootstrap) as channel:
            stub = stave_pb2_grpc.StaveStub(channel)
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"stave server exited with {self.proc.returncode}:\n{self.log_tail()}"
                    )
                try:
                    stub.Metadata(stave_pb2.MetadataRequest(), timeout=1.0)
                    return
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"stave server not answering after {timeout_s:g} s:\n{self.log_tail()}"
                        ) from None
                    time.sleep(0.05)  # polling readiness with a deadline

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _server(tmp: Path) -> StaveServer:
    return StaveServer(stave_bin(), tmp / "data", tmp / "server.log")


@pytest.fixture(scope="session")
def server():
    """The suite's shared node."""
    with tempfile.TemporaryDirectory(prefix="stave-py-") as tmp:
        node = _server(Path(tmp))
        node.start()
        try:
            yield node
        finally:
            node.stop()
            node.kill()


@pytest.fixture
def own_server():
    """A node for one test alone (one that kills and restarts it)."""
    with tempfile.TemporaryDirectory(prefix="stave-py-own-") as tmp:
        node = _server(Path(tmp))
        node.start()
        try:
            yield node
        finally:
            node.kill()


@pytest.fixture(scope="session")
def bootstrap(server) -> str:
    return server.bootstrap


@pytest.fixture
def admin(bootstrap):
    import stave

    with stave.Admin(bootstrap) as client:
        yield client


@pytest.fixture
def topic_name(request) -> str:
    """A topic name of its own for each test."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"t-{base}-{uuid.uuid4().hex[:8]}"


def poll_until(consumers, done, timeout_s: float = 20.0, what: str = "condition"):
    """Polls every consumer in turn, collecting records per consumer, until
    ``done(collected)`` holds; fails after ``timeout_s``. Returns the collected lists."""
    collected = [[] for _ in consumers]
    deadline = time.monotonic() + timeout_s
    while not done(collected):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; got {[len(c) for c in collected]} records")
        for i, consumer in enumerate(consumers):
            record = consumer.poll(0.02)
            while record is not None:
                collected[i].append(record)
                record = consumer.poll(0)
    return collected
