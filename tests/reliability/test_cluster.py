"""The distributed engine: a three-node RabbitMQ cluster started on this machine (bench/cluster.py),
quorum queues replicated on every node, and one node stopped during traffic and started again:
nothing lost, nothing handled twice. The machine's own broker is left as it was."""

from __future__ import annotations

import json
import subprocess

import pytest

from bench.cluster import run

pytestmark = pytest.mark.slow  # a three-node cluster started and stopped


def _local_broker() -> tuple[str, list[str]]:
    status = subprocess.run(
        ["rabbitmqctl", "cluster_status", "--formatter", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    running = json.loads(status)["running_nodes"]
    return running[0], running


def test_a_node_lost_during_traffic_loses_nothing():
    before = _local_broker()
    report = run(600, rate=50.0)["result"]
    assert report["lost"] == 0, report
    assert report["duplicated"] == 0, report
    assert report["rejected"] == {}, report
    assert report["sent"] == {"events": 480, "requests": 120}, report
    assert report["delivered"] == {"civil": 120, "tax": 480, "treasury": 480}, report
    assert report["recovery_s"] is not None, report
    members = report["quorum_queue_members"]
    assert len(members) == 5, report  # one queue per connector
    assert all(len(nodes) == 3 for nodes in members.values()), members
    assert report["notes"]["online_replicas_while_stopped"] == 2, report
    assert report["notes"]["online_replicas_after_restart"] == 3, report
    assert _local_broker() == before  # the machine's broker: same node, still alone
