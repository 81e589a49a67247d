"""The node's Prometheus metrics (`stave server --metrics-listen`), scraped over HTTP and
parsed with the official Python client's parser: the exposition is valid and the key
families are there after some traffic."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import StaveServer, free_port, stave_bin

KEY_FAMILIES = {
    "stave_partition_records_produced": "counter",
    "stave_partition_bytes_produced": "counter",
    "stave_partition_records_fetched": "counter",
    "stave_partition_bytes_fetched": "counter",
    "stave_rpc_requests": "counter",
    "stave_rpc_duration_seconds": "histogram",
    "stave_raft_commit_duration_seconds": "histogram",
    "stave_raft_term": "gauge",
    "stave_raft_leader_changes": "counter",
    "stave_raft_partition_replicas": "gauge",
    "stave_log_fsync_duration_seconds": "histogram",
    "stave_log_segments": "gauge",
    "stave_log_size_bytes": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_threads": "gauge",
}


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


@pytest.fixture
def metered(tmp_path):
    node = StaveServer(
        stave_bin(),
        tmp_path / "data",
        tmp_path / "server.log",
        metrics_listen=f"127.0.0.1:{free_port()}",
    )
    node.start()
    try:
        yield node
    finally:
        node.stop()
        node.kill()


def test_metrics_parse_and_hold_the_key_families(metered):
    # Traffic: the quickstart publishes and consumes 100 records.
    done = subprocess.run(
        [sys.executable, "-m", "stave.quickstart", "--bootstrap", metered.bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    content_type, text = scrape(f"http://{metered.metrics_listen}/metrics")
    assert content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert text.endswith("# EOF\n")
    parsed = list(text_string_to_metric_families(text))
    families = {family.name: family for family in parsed}
    for name, kind in KEY_FAMILIES.items():
        assert name in families, f"{name} missing from:\n{text}"
        assert families[name].type == kind, (name, families[name].type)
    # Samples by their own name (this parser files a counter's `_total` samples apart from
    # its family, which is named without the suffix).
    samples = [sample for family in parsed for sample in family.samples]
    produced = sum(
        sample.value
        for sample in samples
        if sample.name == "stave_partition_records_produced_total"
        and sample.labels.get("topic") == "quickstart"
    )
    assert produced >= 100
    codes = {
        sample.labels["code"] for sample in samples if sample.name == "stave_rpc_requests_total"
    }
    assert "OK" in codes


def test_anything_but_get_metrics_is_not_found(metered):
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(f"http://{metered.metrics_listen}/")
    assert refused.value.code == 404
