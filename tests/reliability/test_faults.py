"""Faults during traffic on the real RabbitMQ (bench/faults.py at a small size): for each
fault, every message the broker confirmed is handled exactly once or refused with a code,
none is lost, and the machine's broker is left running."""

from __future__ import annotations

import subprocess

import pytest

from bench.faults import FAULTS, run_fault

pytestmark = pytest.mark.slow  # minutes of traffic under faults: `pytest -m "not slow"` skips

MESSAGES = 500  # 400 events (each to two subscribers) and 100 requests
RATE = 50.0  # events per second: the events go on for 8 s, the fault starting at 2.4 s


@pytest.fixture(autouse=True)
def _broker_left_running():
    yield
    subprocess.run(["rabbitmqctl", "await_startup"], check=True, capture_output=True, timeout=120)


def _run(fault: str) -> dict:
    report = run_fault(fault, MESSAGES, rate=RATE, settle=90)
    assert report["lost"] == 0, report
    assert report["duplicated"] == 0, report
    # tax's handler is transactional: its effect commits with its done mark, so even when
    # tax dies mid-batch (connector-killed, replica-killed) no effect is made twice
    assert report["handler_reruns"] == 0, report
    assert report["unconfirmed"] == 0, report
    assert report["sent"] == {"events": 400, "requests": 100}, report
    return report


CLEAN = [  # faults after which everything is handled, nothing refused
    "none",
    "connections-dropped",
    "broker-restarted",
    "connector-killed",
    "replica-killed",
    "database-locked",
    "key-rotated",
]


@pytest.mark.parametrize("fault", CLEAN)
def test_nothing_is_lost_refused_or_handled_twice(fault):
    """Every event reaches both subscribers once and every request is answered once, with
    no dead letter, whatever the fault."""
    report = _run(fault)
    assert report["rejected"] == {}, report
    assert report["delivered"] == {"civil": 100, "tax": 400, "treasury": 400}, report
    assert report["delivered_exactly_once"] == 900, report
    if fault == "connections-dropped":
        assert report["notes"]["connections_open"] == 5, report  # one per connector


def test_a_skewed_clock_refuses_by_code_and_loses_nothing():
    """While treasury's clock is two minutes slow, what it receives is refused as from the
    future (dead-lettered with the code); the other receivers are untouched."""
    report = _run("clock-skewed")
    assert set(report["rejected"]) == {"stale"}, report
    refused = report["rejected"]["stale"]
    assert 0 < refused < 400, report
    assert report["delivered"]["treasury"] + refused == 400, report
    assert report["delivered"]["tax"] == 400, report
    assert report["delivered"]["civil"] == 100, report


def test_an_expiring_directory_pauses_the_bus_and_its_renewal_resumes_it():
    """Once the directory expires nobody sends or judges; after its renewal everything
    that was held back is carried, nothing refused or lost."""
    report = _run("directory-renewed")
    assert report["rejected"] == {}, report
    assert report["delivered"] == {"civil": 100, "tax": 400, "treasury": 400}, report
    assert report["sends_refused_then_retried"].get("directory-expired", 0) > 0, report


def test_every_fault_has_a_test():
    assert set(FAULTS) == {*CLEAN, "clock-skewed", "directory-renewed"}
