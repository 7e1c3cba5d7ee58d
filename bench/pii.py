"""PII screening benchmark: rows per second of a full scan of a generated CSV file, beside a
plain ``csv.reader`` pass over the same file in the same run, and the scan's peak memory.

    python -m bench.pii [--rows 1000000]

The file has nine columns, six of them personal (name, CIN, phone, e-mail, birth date, RIB)
and three not (id, commune, amount); every cell is non-empty. Goal: a full scan of at least
100,000 rows/s on one core. Peak memory is traced (``tracemalloc``) on a scan of the first
200,000 rows: the scan keeps counters, not rows, so it does not grow with the file.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._timing import Figure, machine, rate
from governance.pii import scan_csv

Progress = Callable[[str], None]
GOAL = 100_000
TRACED_ROWS = 200_000
HEADER = [
    "id", "nom_complet", "cin", "telephone", "email", "date_naissance", "rib", "commune",
    "montant",
]  # fmt: skip
_FIRST = ["Amina", "Youssef", "Fatima Zahra", "Mohamed", "Khadija", "Omar", "Salma", "Hamza"]
_LAST = ["Alaoui", "Bennani", "El Idrissi", "Tazi", "Berrada", "Chraibi", "Fassi", "Ouazzani"]
_COMMUNES = ["Rabat", "Casablanca", "Fès", "Marrakech", "Tanger", "Agadir", "Oujda", "Meknès"]


def _rib(rng: random.Random) -> str:
    body = f"{rng.randrange(10**21, 10**22):022d}"
    return f"{body}{97 - int(body) * 100 % 97:02d}"


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    """``rows`` rows of the nine columns, reproducible from ``seed``."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for i in range(1, rows + 1):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            writer.writerow(
                (
                    i,
                    f"{first} {last}",
                    (
                        f"{rng.choice('ABCDGHJKLMX')}{rng.choice(['', 'B', 'E', 'K'])}"
                        f"{rng.randrange(10_000, 999_999)}"
                    ),
                    f"06{rng.randrange(10_000_000, 99_999_999)}",
                    f"{first[0].lower()}.{last.replace(' ', '').lower()}{i}@example.ma",
                    (
                        f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/"
                        f"{rng.randrange(1940, 2006)}"
                    ),
                    _rib(rng),
                    rng.choice(_COMMUNES),
                    f"{rng.randrange(0, 100_000)}.{rng.randrange(0, 100):02d}",
                )
            )


def run(rows: int = 1_000_000, progress: Progress | None = None) -> dict[str, Any]:
    """Generate a file of ``rows`` rows, then time the scan and the plain reader over it."""
    say = progress or (lambda _step: None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "people.csv"
        say(f"generating {rows:,} rows")
        write_csv(path, rows)
        size = path.stat().st_size

        def plain() -> int:
            with path.open(encoding="utf-8-sig", newline="") as f:
                return sum(1 for _ in csv.reader(f)) - 1

        report_rows: list[int] = []

        def scan() -> int:
            report = scan_csv(path)
            report_rows.append(report.rows_scanned)
            return report.rows_scanned

        say("plain csv.reader pass")
        raw = rate(plain, repeats=2)
        say("PII scan")
        started = time.perf_counter()
        product = rate(scan, repeats=1)
        seconds = time.perf_counter() - started
        say("peak memory of the scan")
        traced = min(rows, TRACED_ROWS)
        tracemalloc.start()
        try:
            scan_csv(path, sample_rows=traced)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    figure = Figure(
        "PII scan (9 columns, 6 personal)",
        "rows",
        product,
        raw,
        "csv.reader over the same file, no detection",
        goal=f">= {GOAL:,}/s",
        met=product >= GOAL,
    )
    return {
        "benchmark": "pii",
        "machine": machine(),
        "rows": rows,
        "columns": len(HEADER),
        "file_bytes": size,
        "scan_seconds": round(seconds, 2),
        "peak_memory_bytes": peak,
        "peak_memory_rows": traced,
        "results": [figure.as_dict()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the generated file")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
