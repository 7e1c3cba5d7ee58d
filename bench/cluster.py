"""A three-node RabbitMQ cluster on this one machine, for the distributed-engine proof:
quorum queues replicated on the three nodes, connectors given all three addresses, one
node stopped during traffic and started again.

    python -m bench.cluster [--messages 10000]     # or: tabadul bench cluster

The nodes (``tabadul1@localhost`` ...) have their own AMQP and distribution ports and their
own folders (owned by the ``rabbitmq`` user, which the server drops to); the second and
third join the first with ``rabbitmqctl join_cluster``. The machine's own broker node is left
alone: the cluster never joins it and every command names its node. The cluster is stopped
and its folders removed on leaving, whatever happened. docs/operations.md describes the same
cluster for production.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._timing import machine
from bench.faults import Bus, Window, run_fault

AMQP_BASE = 5681  # tabadul1 listens on 5681, tabadul2 on 5682, tabadul3 on 5683
DIST_BASE = 25681
NODES = 3


class ClusterError(RuntimeError):
    """The cluster could not be started (a port taken, a node that did not come up)."""


@dataclass(frozen=True)
class Node:
    name: str  # tabadul1@localhost
    amqp_port: int
    dist_port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/%2F"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
        }

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """``rabbitmqctl -n NODE ARGS``; raises ClusterError with its output on failure."""
        done = subprocess.run(  # noqa: S603 - fixed arguments
            ["rabbitmqctl", "-n", self.name, *args],  # noqa: S607 - the broker's own tool
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            raise ClusterError(f"rabbitmqctl -n {self.name} {' '.join(args)}: {done.stderr}")
        return done.stdout


def _await(node: Node, timeout: float = 180) -> None:
    """Wait until ``node`` runs (a node just started may not be registered yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            node.ctl("await_startup", timeout=timeout)
        except ClusterError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
        else:
            return


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _prepare(node: Node) -> None:
    for sub in ("mnesia", "log"):
        (node.folder / sub).mkdir(parents=True)
    (node.folder / "enabled_plugins").write_text("[].\n")
    (node.folder / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = 127.0.0.1:{node.amqp_port}\nloopback_users = none\n"
    )
    (node.folder / "rabbitmq-env.conf").write_text(
        "ERL_EPMD_ADDRESS=127.0.0.1\n"
        'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"\n'
    )
    shutil.chown(node.folder.parent, "rabbitmq", "rabbitmq")
    for path in [node.folder, *node.folder.rglob("*")]:
        shutil.chown(path, "rabbitmq", "rabbitmq")


def _start(node: Node) -> None:
    subprocess.run(
        ["rabbitmq-server", "-detached"],  # noqa: S607 - the broker's own tool
        env=node.env(),
        check=True,
        capture_output=True,
        timeout=120,
    )


def _stop(node: Node) -> None:
    """``rabbitmqctl stop``; if that fails, kill the node's process by its pid file."""
    try:
        node.ctl("stop", timeout=60)
    except (ClusterError, subprocess.TimeoutExpired):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((node.folder / "node.pid").read_text().strip()), signal.SIGKILL)


@contextlib.contextmanager
def local_cluster(nodes: int = NODES) -> Iterator[list[Node]]:
    """Start and join ``nodes`` RabbitMQ nodes; stop them and remove their folders on
    leaving."""
    root = Path(tempfile.mkdtemp(prefix="tabadul-cluster-"))
    members = [
        Node(f"tabadul{i}@localhost", AMQP_BASE + i - 1, DIST_BASE + i - 1, root / f"n{i}")
        for i in range(1, nodes + 1)
    ]
    try:
        for node in members:
            for port in (node.amqp_port, node.dist_port):
                if _port_taken(port):
                    raise ClusterError(f"port {port} is taken; the cluster needs it")
            _prepare(node)
        for node in members:
            _start(node)
        for node in members:
            _await(node)
        first = members[0]
        for node in members[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            _await(node)
        running = first.ctl("cluster_status", "--formatter", "json")
        listed = set(json.loads(running)["running_nodes"])
        if listed != {n.name for n in members}:
            raise ClusterError(f"the cluster runs {sorted(listed)}, not every node")
        yield members
    finally:
        for node in reversed(members):
            _stop(node)
        shutil.rmtree(root, ignore_errors=True)


def queue_members(node: Node, prefix: str) -> dict[str, list[str]]:
    """Quorum queue name -> the nodes whose replica is online, for queues starting with
    ``prefix``."""
    listing = node.ctl("list_queues", "name", "type", "online", "--formatter", "json")
    return {
        q["name"]: sorted(q["online"])
        for q in json.loads(listing)
        if q["name"].startswith(prefix) and q["type"] == "quorum"
    }


def _fewest_online(node: Node, prefix: str) -> int:
    """The fewest online replicas among the run's quorum queues (0 when there are none)."""
    return min((len(m) for m in queue_members(node, prefix).values()), default=0)


def run(messages: int = 10_000, *, rate: float = 600.0, progress: Any = None) -> dict[str, Any]:
    """Traffic over the cluster while its first node (the one every connector tries first)
    is stopped for five seconds and started again; recovery counts from the node's stop."""
    say = progress or (lambda _step: None)
    say("starting a three-node cluster")
    with local_cluster() as nodes:
        replicas: dict[str, list[str]] = {}

        def stop_first_node(bus: Bus, window: Window) -> None:
            replicas.update(queue_members(nodes[1], f"tabadul.q.{bus.instance}."))
            first = nodes[0]
            window.notes["stopped"] = first.name
            window.began = time.time()
            prefix = f"tabadul.q.{bus.instance}."
            try:
                first.ctl("stop_app")
                window.ended = time.time()  # recovery counts from the node's loss
                window.notes["online_replicas_while_stopped"] = _fewest_online(nodes[1], prefix)
                time.sleep(5.0)
            finally:
                first.ctl("start_app")
                _await(first)
            deadline = time.monotonic() + 60  # the restarted replicas catch up, then count
            while _fewest_online(first, prefix) < NODES and time.monotonic() < deadline:
                time.sleep(1.0)
            window.notes["online_replicas_after_restart"] = _fewest_online(first, prefix)

        report = run_fault(
            "node-stopped",
            messages,
            rate=rate,
            broker_urls=tuple(n.url for n in nodes),
            inject=stop_first_node,
            progress=say,
        )
    report["description"] = "One node of three is stopped for five seconds during traffic."
    report["quorum_queue_members"] = replicas
    return {"benchmark": "cluster", "machine": machine(), "nodes": NODES, "result": report}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=600.0)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.messages, rate=args.rate, progress=print), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
