"""`tabadul dataset derive`: a publishable file without the personal columns, its lineage
recorded, and with --submit the findings on those columns resolved by the derivation."""

from __future__ import annotations

import csv
import json

from tests.cli.governance.conftest import Cli, classify_args, register_args

PUBLIC_SCHEMA = {
    "fields": [
        {"name": "bureau", "type": "string"},
        {"name": "ville", "type": "string"},
        {"name": "droits", "type": "string"},
    ]
}


def test_derive_and_submit_puts_the_publishable_file_under_review(people: Cli) -> None:
    """The offices' list without the contact column and with duties cut to ranges: the
    derived file goes to review, the lineage is in the history, nothing is left to resolve."""
    classified = people
    schema_file = people.file("public.schema.json", json.dumps(PUBLIC_SCHEMA))
    people.ok(*register_args(people, "offices", **{"--schema-file": schema_file}))
    people.ok(*classify_args())
    source = classified.file(
        "offices.csv",
        "bureau,ville,contact,droits\nB01,Rabat,a.alaoui@douane.gov.ma,12.5\n"
        "B02,Casablanca,k.idrissi@douane.gov.ma,7\n",
    )
    target = classified.tmp / "public.csv"
    done = classified.ok(
        "dataset", "derive", "offices", source, "-o", str(target), "--drop", "contact",
        "--range", "droits:10", "--reason", "open release", "--submit", "--actor", "amina",
    )  # fmt: skip
    with target.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["bureau", "ville", "droits"]
    assert [r[2] for r in rows[1:]] == ["10-19", "0-9"]
    assert (done["rows"], done["unresolved"]) == (2, [])
    history = classified.ok("dataset", "history", "offices")
    actions = [e["action"] for e in history["entries"]]
    assert "dataset.derive" in actions
    assert "dataset.submit" in actions


def test_derive_refuses_a_plan_it_cannot_read(classified: Cli) -> None:
    source = classified.file("o.csv", "bureau,contact\nB01,x@y.ma\n")
    out = str(classified.tmp / "p.csv")
    classified.refused(
        "invalid-input", "dataset", "derive", "offices", source, "-o", out, "--reason", "r",
        "--actor", "amina",
    )  # fmt: skip
    classified.refused(
        "invalid-input", "dataset", "derive", "offices", source, "-o", out, "--prefix", "x:0",
        "--reason", "r", "--actor", "amina",
    )  # fmt: skip
    classified.refused(
        "unknown-column", "dataset", "derive", "offices", source, "-o", out, "--drop", "nope",
        "--reason", "r", "--actor", "amina",
    )  # fmt: skip
