"""Customs declarations as the bus carries them, as rows of the risk model, and back.

A ``customs.declaration-lodged`` payload has one or more items; each item is one row of
:data:`ITEM_COLUMNS`, named as the Korea Customs Service's data set names them, so that a
model trained on those files (restricted to these columns: :func:`bus_layout`) scores
declarations on the bus. The mapping, item by item:

================== ============================================================
column             from the declaration
================== ============================================================
Declaration ID     ``<declaration_number>/<line>``
Date               the day of ``lodged_at`` (``YYYY-MM-DD``)
Office ID          ``office_code``
Declarant ID       the customs broker's ``broker_id`` (empty when the importer
                   declares itself)
Importer ID        the importer's ``tax_id``
HS6 Code           the first six digits of the item's ``hs_code``
Country of Origin  ``origin_country``
Net Mass           ``gross_mass_kg`` (the bus carries the gross mass; empty when
                   absent)
Item Price         ``customs_value`` when in MAD (empty otherwise: the model
                   knows no exchange rates)
================== ============================================================

:func:`assessment` turns the model's item scores into a ``customs.risk-assessed`` payload:
the declaration's score is its highest item score and its lane the most severe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from risk._errors import ModelNotForBus, NotADeclaration
from risk._features import Layout, infer_layout
from risk._model import Model
from risk._store import Stored

ID = "Declaration ID"
DATE = "Date"
ITEM_COLUMNS = (
    ID,
    DATE,
    "Office ID",
    "Declarant ID",
    "Importer ID",
    "HS6 Code",
    "Country of Origin",
    "Net Mass",
    "Item Price",
)
"""The columns of one declaration item, as the risk model reads it."""

LABEL = "Fraud"
_SEVERITY = {"green": 0, "yellow": 1, "red": 2}
EXPLAINED = ("red", "yellow")
"""The lanes whose items carry reasons on the bus (tree SHAP is most of a score's cost)."""


def item_cells(declaration: Mapping[str, Any]) -> dict[str, list[str]]:
    """The rows of ``declaration`` (a valid ``customs.declaration-lodged`` payload) as
    columns of text cells, one row per item. Raises :class:`NotADeclaration` when a field
    the mapping needs is missing."""
    try:
        number = str(declaration["declaration_number"])
        day = str(declaration["lodged_at"])[:10]
        office = str(declaration["office_code"])
        declarant = str((declaration.get("declarant") or {}).get("broker_id", ""))
        importer = str(declaration["importer"]["tax_id"])
        items = list(declaration["items"])
        cells: dict[str, list[str]] = {name: [] for name in ITEM_COLUMNS}
        for position, item in enumerate(items, start=1):
            value = item["customs_value"]
            cells[ID].append(f"{number}/{item.get('line', position)}")
            cells[DATE].append(day)
            cells["Office ID"].append(office)
            cells["Declarant ID"].append(declarant)
            cells["Importer ID"].append(importer)
            cells["HS6 Code"].append(str(item["hs_code"])[:6])
            cells["Country of Origin"].append(str(item["origin_country"]))
            cells["Net Mass"].append(str(item.get("gross_mass_kg", "")))
            cells["Item Price"].append(str(value["amount"]) if value["currency"] == "MAD" else "")
    except (KeyError, TypeError, AttributeError) as exc:
        raise NotADeclaration(f"not a customs.declaration-lodged payload: no {exc}") from None
    if not items:
        raise NotADeclaration("a declaration without items has nothing to score")
    return cells


def bus_layout(frame: pd.DataFrame, label: str = LABEL) -> Layout:
    """The layout of a model for the bus: :data:`ITEM_COLUMNS` of ``frame`` as features,
    ``label`` as the label, every other column excluded."""
    others = [c for c in frame.columns if c not in ITEM_COLUMNS and c != label]
    return infer_layout(frame, id_column=ID, label=label, time=DATE, exclude=others)


def check_for_bus(model: Model) -> None:
    """Raises :class:`ModelNotForBus` when ``model`` reads columns declarations lack."""
    beyond = [c for c in model.layout.inputs if c not in ITEM_COLUMNS]
    if beyond or model.layout.id != ID or model.layout.time != DATE:
        raise ModelNotForBus(
            "the model reads column(s) the bus does not carry: "
            f"{', '.join(map(repr, beyond or [model.layout.id]))}; train it with the "
            f"columns {', '.join(ITEM_COLUMNS)} only (tabadul risk train --for-bus)",
            columns=beyond,
        )


def assessment(
    stored: Stored, cells: Mapping[str, Sequence[str]], *, declaration_number: str, now: datetime
) -> dict[str, Any]:
    """The ``customs.risk-assessed`` payload of the declaration whose rows are ``cells``,
    scored by the model ``stored``; reasons are given for the red and yellow lanes, where
    someone acts on them."""
    scored = stored.model.assess(cells, explain=EXPLAINED)
    items = [
        {
            "line": int(str(row["id"]).rsplit("/", 1)[1]),
            "score": row["score"],
            "lane": row["lane"],
            "reasons": row["reasons"],
        }
        for row in scored
    ]
    return {
        "declaration_number": declaration_number,
        "assessed_at": now.isoformat(timespec="seconds"),
        "model": {"version": stored.version, "digest": stored.digest},
        "score": max(item["score"] for item in items),
        "lane": max((item["lane"] for item in items), key=_SEVERITY.__getitem__),
        "items": items,
    }
