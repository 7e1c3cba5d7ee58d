"""The demo's risk analytics: customs' declarations scored on the bus, inspected, learnt from.

Before the connectors start, a model for the bus is trained (``risk.bus_layout``) on the
Korea Customs Service's synthetic declarations: the full files when they are at hand
(``--risk-data DIR``, ``$TABADUL_RISK_DATA`` or ``../shared/data/customs-declarations``),
else the sample shipped in ``risk/data``. The risk service's connector
(``MA/GOV/MEF/CUSTOMS-RISK``) assesses every declaration customs publishes and sends the
assessments back, encrypted. Customs' inspectors then inspect the red and yellow lanes and,
as control, every other green one; their results go back to the service, which retrains: the
new version replaces the old one only when it does no worse on the inspected declarations.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors import Connector
from connectors.ministries import customs

if TYPE_CHECKING:
    from risk import RiskService, Source

RISK_DATA_ENV = "TABADUL_RISK_DATA"
SHARED_DATA = Path("../shared/data/customs-declarations")
FILES = ("train.csv", "valid.csv")
Progress = Callable[[str], None]
TIMEOUT = 60.0  # seconds to wait for the messages of one step


def data_files(folder: Path | None) -> list[Path]:
    """The training files: those of ``folder`` (else ``$TABADUL_RISK_DATA``, else the shared
    data folder) when present, else the shipped sample. Raises :class:`risk.BadOption` when
    ``folder`` is given and holds neither file."""
    import risk  # noqa: PLC0415 - pandas and LightGBM only when the demo runs

    if folder is not None and not any((folder / name).is_file() for name in FILES):
        raise risk.BadOption(f"--risk-data {folder} holds neither {' nor '.join(FILES)}")
    for candidate in (folder, os.environ.get(RISK_DATA_ENV), SHARED_DATA):
        if candidate is None:
            continue
        found = [Path(candidate) / name for name in FILES if (Path(candidate) / name).is_file()]
        if found:
            return found
    return [risk.SAMPLE]


def prepare(folder: Path, files: list[Path], say: Progress) -> tuple[RiskService, Source]:
    """Train the bus model on ``files`` into ``folder`` and open the risk service on it."""
    from risk import ModelStore, RiskService, bus_layout, read_tables, train  # noqa: PLC0415

    source = read_tables(files)
    started = time.perf_counter()
    model = train(source.frame, bus_layout(source.frame))
    store = ModelStore(folder)
    store.save(model, training=source.as_training())
    say(
        f"risk model trained on {len(source.frame):,} declarations "
        f"({', '.join(f.name for f in files)}) in {time.perf_counter() - started:.1f} s: "
        f"hold-out AUC {model.metrics.auc:.3f}"
    )
    return RiskService(store), source


def run(
    customs_connector: Connector, service: RiskService, source: Source, *, say: Progress
) -> dict[str, Any]:
    """Wait for the assessments of the sample declarations (published by then); inspect;
    retrain. The summary."""
    from risk import RiskError, retrain  # noqa: PLC0415

    declarations = [lodged["declaration_number"] for lodged, _ in customs.declarations()]
    assessed = _wait(lambda: _assessed(declarations), len(declarations))
    lanes = Counter(a["lane"] for a in assessed)
    say(
        f"{len(assessed)} declarations risk-assessed on the bus and sent to customs "
        f"encrypted: {dict(sorted(lanes.items()))}"
    )
    inspected = _to_inspect(assessed)
    frauds = 0
    for assessment in inspected:
        result = customs.inspection_result(
            assessment["declaration_number"], assessment["assessed_at"]
        )
        frauds += result["fraud_found"]
        customs_connector.send(customs.INSPECTION_RESULT, customs.RISK_SUBSYSTEM, result)
    _wait(lambda: [None] * service.outcomes.counts()["inspected"], len(inspected))
    say(
        f"customs inspected {len(inspected)} declarations (red, yellow and a control sample "
        f"of green), found fraud in {frauds}, and sent the results to the risk service"
    )
    try:
        done = retrain(service.store, service.outcomes, source)
        retrained: dict[str, Any] = done.as_dict()
        say(
            f"retrained from the inspections: version {done.version} "
            + ("replaces" if done.replaced else "not better, so it does not replace")
            + f" {done.previous}"
        )
    except RiskError as exc:
        retrained = {"replaced": False, **exc.as_dict()}
        say(f"retraining postponed: {exc.message}")
    red = sorted(assessed, key=lambda a: -a["score"])[:3]
    return {
        "model": service.stored.manifest["metrics"] | {"version": service.stored.version},
        "lanes": dict(sorted(lanes.items())),
        "highest": [
            {
                "declaration": a["declaration_number"],
                "score": a["score"],
                "lane": a["lane"],
                "reasons": [
                    f"{r['labels']['en']} ({r['contribution']:+.2f})"
                    for r in max(a["items"], key=lambda i: i["score"])["reasons"][:3]
                ],
            }
            for a in red
        ],
        "inspected": len(inspected),
        "frauds_found": frauds,
        "retrained": retrained,
    }


def _assessed(declarations: list[str]) -> list[dict[str, Any]]:
    wanted = set(declarations)
    return [a for a in customs.received_assessments() if a["declaration_number"] in wanted]


def _to_inspect(assessed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Red and yellow, and every other green (the control sample that keeps learning
    unbiased)."""
    greens = [a for a in assessed if a["lane"] == "green"]
    return [a for a in assessed if a["lane"] != "green"] + greens[::2]


def _wait(found: Callable[[], list[Any]], count: int) -> list[Any]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        have = found()
        if len(have) >= count or time.monotonic() > deadline:
            return have
        time.sleep(0.1)
