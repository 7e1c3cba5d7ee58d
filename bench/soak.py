"""Soak: steady traffic for a long time (30 minutes by default) on the bus of
bench/faults.py, with each connector's memory and the queue depths sampled as it goes.

    python -m bench.soak [--minutes 30] [--rate 200]      # or: tabadul bench soak

Customs publishes ``rate`` declarations per second to tax and treasury, and the tax desk
asks the civil registry about ten times per second. Every ``--sample`` seconds the run
records the resident memory of each connector process and of this process (which runs the
two sending connectors), the messages waiting in each queue, and the handler calls so far.

Flat means: memory at the end within a small margin of memory after the warm-up (the first
tenth of the run), and queue depths that stay small instead of growing. At the end every
confirmed message is accounted for as in bench/faults.py (lost and duplicated must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._timing import machine
from bench.faults import (
    Bus,
    Tally,
    account,
    queue_depths,
    running_bus,
    send_events,
    send_requests,
    settle_all,
)

Progress = Callable[[str], None]


def _rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _sample(bus: Bus, began: float) -> dict[str, Any]:
    memory = {name: _rss_mb(child.pid) for name, child in bus.children.items()}
    memory["senders"] = _rss_mb(os.getpid())
    return {
        "t_s": round(time.monotonic() - began, 1),
        "rss_mb": memory,
        "queue_depth": queue_depths(bus),
        "handled": _handled(bus.effects_path),
    }


def _handled(effects_path: Path) -> int:
    """Handler calls so far, counted in the database (reading them all at every sample
    would grow this process's memory with the harness's own bookkeeping)."""
    with contextlib.closing(sqlite3.connect(effects_path, timeout=60)) as db:
        return int(db.execute("SELECT count(*) FROM calls").fetchone()[0])


def _paced_keys(stop: threading.Event, per_second: float) -> Iterator[str]:
    """Case references, one per 1/per_second seconds (the caller asks for the next when its
    request is answered), until ``stop``."""
    began = time.monotonic()
    for i in itertools.count():
        if stop.is_set():
            return
        yield f"SOAK/{i:07d}"
        ahead = began + (i + 1) / per_second - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def _growth(samples: list[dict[str, Any]]) -> dict[str, float]:
    """Memory at the last sample minus memory after the warm-up, per process (MB)."""
    warm = samples[max(1, len(samples) // 10)] if len(samples) > 1 else samples[0]
    last = samples[-1]
    return {p: round(last["rss_mb"][p] - warm["rss_mb"].get(p, 0.0), 1) for p in last["rss_mb"]}


def run(
    minutes: float = 30.0,
    *,
    rate: float = 200.0,
    requests_per_s: float = 10.0,
    sample_every: float = 30.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Steady traffic for ``minutes``; the samples and the final accounting."""
    say = progress or (lambda _step: None)
    with tempfile.TemporaryDirectory() as tmp, running_bus(Path(tmp)) as bus:
        effects, tally, stop = bus.effects(), Tally(), threading.Event()
        threads = [
            threading.Thread(target=send_events, args=(bus, tally, rate), kwargs={"stop": stop}),
            threading.Thread(
                target=send_requests, args=(bus, _paced_keys(stop, requests_per_s), tally)
            ),
        ]
        began = time.monotonic()
        for thread in threads:
            thread.start()
        samples: list[dict[str, Any]] = []
        try:
            samples.append(_sample(bus, began))
            end = began + minutes * 60
            while time.monotonic() < end:
                time.sleep(max(0.0, min(sample_every, end - time.monotonic())))
                samples.append(_sample(bus, began))
                say(
                    f"{samples[-1]['t_s']:.0f} s: {samples[-1]['handled']:,} handled, "
                    f"queues {samples[-1]['queue_depth']}"
                )
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        say("settling")
        calls, rejected = settle_all(bus, tally, effects, 120)
        effects.close()
    depths = [d for s in samples for d in s["queue_depth"].values()]
    return {
        "benchmark": "soak",
        "machine": machine(),
        "minutes": minutes,
        "events_per_s": rate,
        "requests_per_s": requests_per_s,
        **account(tally, calls, rejected),
        "rss_growth_mb": _growth(samples),
        "max_queue_depth": max(depths),
        "samples": samples,
        "goals": {"lost": 0, "duplicated": 0, "memory": "flat", "queue_depth": "flat"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--sample", type=float, default=30.0)
    args = parser.parse_args(argv)
    report = run(args.minutes, rate=args.rate, sample_every=args.sample, progress=print)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
