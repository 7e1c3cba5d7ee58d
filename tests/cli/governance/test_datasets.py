"""``tabadul dataset``: the inventory and the four-eyes review from the command line, end to
end and refusal by refusal; submitting stores, validates and screens the file."""

from __future__ import annotations

import hashlib
import io
import json

from rich.console import Console

from tabadul.cli import _common
from tests.cli.governance.conftest import (
    CSV,
    TITLE_AR,
    Cli,
    add_people,
    classify_args,
    register_args,
)

# Switchboard numbers of offices instead of people's addresses: nothing to resolve.
CLEAN_CSV = CSV.replace("a.alaoui@douane.gov.ma", "poste 12").replace(
    "k.idrissi@douane.gov.ma", "poste 7"
)
INVALID_CSV = CSV.replace("12.5", "douze")  # droits not a number, row 2 (the header is 1)


def test_end_to_end_bootstrap_register_classify_submit_resolve_approve(cli: Cli):
    """The operator bootstraps and registers people; a steward registers, classifies and
    submits a CSV (stored by its SHA-256, screened, validated) and resolves its PII finding;
    an approver of the same agency approves; the audit log holds every step and verifies."""
    add_people(cli)
    registered = cli(*register_args(cli, **{"--tag": "customs"}))
    assert registered.exit_code == 0, registered.output
    assert "registered offices (DRAFT), owned by DOUANE, steward amina" in registered.output
    classified = cli(*classify_args())
    assert "classified offices PUBLIC, no personal data (CLASSIFIED)" in classified.output

    csv_file = cli.file("offices.csv", CSV)
    submitted = cli("dataset", "submit", "offices", csv_file, "--actor", "amina")
    assert submitted.exit_code == 0, submitted.output
    assert "contact:email" in submitted.output  # the PII finding, with its rows
    assert "valid: 2 rows match the Table Schema" in submitted.output
    assert "1 PII finding(s) to resolve before approval: contact:email" in submitted.output
    digest = hashlib.sha256(CSV.encode()).hexdigest()
    assert (cli.tmp / "data" / f"{digest}.csv").read_text("utf-8") == CSV

    cli.refused("pii-unresolved", "dataset", "approve", "offices", "--actor", "karim")
    resolved = cli("dataset", "resolve", "offices", "contact:email", "--resolution", "justify",
                   "--reason", "office addresses, not people's", "--actor", "amina")  # fmt: skip
    assert "nothing to resolve, ready for an approver" in resolved.output
    approved = cli("dataset", "approve", "offices", "--actor", "karim", "--reason", "checked")
    assert approved.exit_code == 0, approved.output
    assert f"approved offices, review #1 (sha256 {digest[:12]}" in approved.output

    shown = cli.ok("dataset", "show", "offices")
    assert shown["dataset"]["state"] == "APPROVED"
    assert shown["dataset"]["content_sha256"] == digest
    assert shown["review"]["decision"] == "approved"
    scored = cli.ok("dataset", "quality", "offices")
    assert 0 <= scored["score"] <= 100
    assert {c["name"] for c in scored["criteria"]} >= {"licence", "schema", "frequency"}
    table = cli("dataset", "quality", "offices")
    assert f"quality {scored['score']} / 100" in table.output
    history = cli.ok("dataset", "history", "offices")
    assert [e["action"] for e in history["entries"]] == [
        "dataset.register",
        "dataset.classify",
        "dataset.submit",
        "finding.resolve",
        "dataset.approve",
    ]
    assert cli("audit", "verify", str(cli.tmp / "governance.sqlite")).exit_code == 0


def test_register_json_and_arabic_text(people: Cli):
    """--json gives the whole record; ``list`` and ``show`` print the Arabic title as is."""
    made = people.ok(*register_args(people, **{"--title-en": "Customs offices"}),
                     "--tag", "customs", "--tag", "offices")  # fmt: skip
    ds = made["dataset"]
    assert ds["title"] == {"fr": "Bureaux de douane", "ar": TITLE_AR, "en": "Customs offices"}
    assert ds["tags"] == ["customs", "offices"]
    assert ds["state"] == "DRAFT"
    assert ds["classification"] is None
    assert ds["table_schema"]["fields"][3] == {"name": "droits", "type": "number"}
    assert TITLE_AR in people("dataset", "list").output
    shown = people("dataset", "show", "offices")
    assert f"ar: {TITLE_AR}" in shown.output
    assert "droits (number)" in shown.output


def test_register_refusals(people: Cli):
    """Bad or missing schema files, a non-steward, a bad frequency, a taken id, no actor."""
    bad_json = register_args(people, **{"--schema-file": people.file("bad.json", "{fields: ")})
    refused = people.refused("bad-schema-file", *bad_json)
    assert "is not JSON" in refused.output
    missing = register_args(people, **{"--schema-file": str(people.tmp / "none.json")})
    people.refused("unreadable-file", *missing)
    not_schema = register_args(people, **{"--schema-file": people.file("list.json", "[1, 2]")})
    people.refused("invalid-input", *not_schema)
    people.refused("wrong-role", *register_args(people, **{"--actor": "karim"}))
    people.refused("invalid-input", *register_args(people, **{"--frequency": "hourly"}))
    people.ok(*register_args(people))
    people.refused("already-exists", *register_args(people))
    no_actor = register_args(people)
    del no_actor[3:5]  # --actor amina
    people.refused("no-actor", *no_actor)


def test_list_filters(classified: Cli):
    """``list`` filters by agency and state."""
    classified.ok(*register_args(classified, "other", **{"--actor": "yasmine"}))
    everything = classified.ok("dataset", "list")
    assert [d["dataset_id"] for d in everything["datasets"]] == ["offices", "other"]
    mef = classified.ok("dataset", "list", "--agency", "MEF")
    assert [d["owner_agency"] for d in mef["datasets"]] == ["MEF"]
    drafts = classified.ok("dataset", "list", "--state", "DRAFT")
    assert [d["dataset_id"] for d in drafts["datasets"]] == ["other"]
    assert "no dataset matches" in classified("dataset", "list", "--state", "PUBLISHED").output


def test_unknown_dataset_everywhere(people: Cli):
    """Every command about a dataset that does not exist says so with one code."""
    for args in (
        ("show", "nope"),
        ("history", "nope"),
        ("findings", "nope"),
        ("reports", "nope"),
        ("classify", "nope", "--level", "PUBLIC", "--no-personal-data", "--legal-basis", "x",
         "--justification", "y", "--actor", "amina"),
        ("approve", "nope", "--actor", "karim"),
    ):  # fmt: skip
        people.refused("unknown-dataset", "dataset", *args)


def test_classify_refusals(people: Cli):
    """Another agency's steward may not classify; a bad level is refused by typer."""
    people.ok(*register_args(people))
    people.refused("other-agency", *classify_args(actor="yasmine"))
    people.refused("wrong-role", *classify_args(actor="karim"))
    bad = people("dataset", "classify", "offices", "--level", "TOP", "--no-personal-data",
                 "--legal-basis", "x", "--justification", "y", "--actor", "amina")  # fmt: skip
    assert bad.exit_code == 2
    assert "Traceback" not in bad.output


def test_submit_invalid_data_shows_row_and_field(classified: Cli):
    """Data that does not match the Table Schema exits 2 with each error's row and field,
    and nothing is submitted."""
    path = classified.file("bad.csv", INVALID_CSV)
    result = classified("dataset", "submit", "offices", path, "--actor", "amina")
    assert result.exit_code == 2, result.output
    assert "error [invalid-data]:" in result.output
    line = next(x for x in result.output.splitlines() if "type-error" in x)
    assert line.split("│")[1:3] == [" 2   ", " droits "]
    as_json = classified("dataset", "submit", "offices", path, "--actor", "amina", "--json")
    assert as_json.exit_code == 2
    error = json.loads(as_json.stdout)["error"]
    assert error["code"] == "invalid-data"
    assert error["validation"]["valid"] is False
    assert error["validation"]["errors"][0]["row"] == 2
    assert error["validation"]["errors"][0]["field"] == "droits"
    assert classified.ok("dataset", "show", "offices")["dataset"]["state"] == "CLASSIFIED"


def test_submit_refusals(people: Cli):
    """A missing file, a dataset not yet classified, a data that may not be opened, another
    agency's steward."""
    people.ok(*register_args(people))
    csv_file = people.file("offices.csv", CSV)
    people.refused("illegal-transition", "dataset", "submit", "offices", csv_file,
                   "--actor", "amina")  # fmt: skip
    people.ok(*classify_args())
    people.refused("missing-file", "dataset", "submit", "offices", str(people.tmp / "none.csv"),
                   "--actor", "amina")  # fmt: skip
    people.refused("other-agency", "dataset", "submit", "offices", csv_file,
                   "--actor", "yasmine")  # fmt: skip
    people.ok("dataset", "classify", "offices", "--level", "INTERNAL", "--no-personal-data",
              "--legal-basis", "x", "--justification", "internal", "--actor", "amina")  # fmt: skip
    people.refused("not-publishable", "dataset", "submit", "offices", csv_file,
                   "--actor", "amina")  # fmt: skip


def test_submit_json_shape(classified: Cli):
    """--json carries the review, the PII report and the validation report."""
    csv_file = classified.file("offices.csv", CSV)
    data = classified.ok("dataset", "submit", "offices", csv_file, "--actor", "amina",
                         "--reason", "yearly update")  # fmt: skip
    assert data["dataset_id"] == "offices"
    assert data["sha256"] == hashlib.sha256(CSV.encode()).hexdigest()
    assert data["findings"] == ["contact:email"]
    assert data["pii"]["findings"][0]["rows"] == [1, 2]
    assert data["validation"] == {"valid": True, "rows": 2, "errors": []}
    assert data["review"]["decision"] == "open"
    assert data["review"]["unresolved"] == ["contact:email"]


def test_submit_shows_a_progress_bar(classified: Cli, monkeypatch):
    """On a terminal, storing the file shows a bar fed by the pipeline's progress callback,
    which then turns to the validation and screening that follow."""
    terminal = io.StringIO()
    monkeypatch.setattr(_common, "err_console", Console(file=terminal, force_terminal=True))
    csv_file = classified.file("offices.csv", CSV)
    result = classified("dataset", "submit", "offices", csv_file, "--actor", "amina")
    assert result.exit_code == 0, result.output
    assert "validating and screening offices.csv" in terminal.getvalue()


def test_findings_resolve_and_reports(submitted: Cli):
    """``findings`` lists each finding and its resolution; ``reports`` shows both reports
    kept with the review; resolving needs a known finding and a steward of the agency."""
    listed = submitted("dataset", "findings", "offices")
    assert "contact:email" in listed.output
    assert "open" in listed.output
    submitted.refused("unknown-finding", "dataset", "resolve", "offices", "ville:email",
                      "--resolution", "drop", "--reason", "x", "--actor", "amina")  # fmt: skip
    submitted.refused("other-agency", "dataset", "resolve", "offices", "contact:email",
                      "--resolution", "drop", "--reason", "x", "--actor", "yasmine")  # fmt: skip
    by_hand = submitted.refused("needs-derivation", "dataset", "resolve", "offices",
                                "contact:email", "--resolution", "generalise", "--reason",
                                "domain only", "--actor", "samir")  # fmt: skip
    assert "tabadul dataset derive" in by_hand.output
    resolved = submitted.ok("dataset", "resolve", "offices", "contact:email",
                            "--resolution", "justify", "--reason", "the offices' public desks",
                            "--actor", "samir")  # fmt: skip
    assert resolved["review"]["unresolved"] == []
    found = submitted.ok("dataset", "findings", "offices")["findings"]
    assert found[0]["finding_id"] == "contact:email"
    assert found[0]["resolution"] == "justify"
    assert found[0]["resolved_by"] == "samir"
    assert found[0]["severity"] == "high"
    reports = submitted("dataset", "reports", "offices")
    assert "contact:email" in reports.output
    assert "valid: 2 rows match the Table Schema" in reports.output
    as_json = submitted.ok("dataset", "reports", "offices")
    assert set(as_json["reports"]) == {"pii", "validation"}


def test_findings_before_any_review(classified: Cli):
    """Findings and reports of a dataset never submitted exit 2 as no-review."""
    classified.refused("no-review", "dataset", "findings", "offices")
    classified.refused("no-review", "dataset", "reports", "offices")


def test_four_eyes_and_roles_on_approval(people: Cli):
    """Who classified or submitted may not approve; a steward may not approve; another
    agency's approver may not either."""
    people.ok(*register_args(people, **{"--actor": "nadia"}))
    people.ok(*classify_args(actor="nadia"))
    people.ok("dataset", "submit", "offices", people.file("ok.csv", CLEAN_CSV),
              "--actor", "amina")  # fmt: skip
    refused = people.refused("four-eyes", "dataset", "approve", "offices", "--actor", "nadia")
    assert "classified it" in refused.output
    people.refused("wrong-role", "dataset", "approve", "offices", "--actor", "amina")
    people.refused("other-agency", "dataset", "approve", "offices", "--actor", "omar")
    approved = people.ok("dataset", "approve", "offices", "--actor", "karim")
    assert approved["review"]["decision"] == "approved"
    assert approved["review"]["decided_by"] == "karim"


def test_reject_then_reopen(submitted: Cli):
    """An approver rejects with a reason, the steward reopens to DRAFT; each step is refused
    from the wrong state or by the wrong person."""
    submitted.refused("illegal-transition", "dataset", "reopen", "offices", "--reason", "x",
                      "--actor", "amina")  # fmt: skip
    submitted.refused("other-agency", "dataset", "reject", "offices", "--reason", "x",
                      "--actor", "omar")  # fmt: skip
    rejected = submitted("dataset", "reject", "offices", "--reason", "drop the e-mail column",
                         "--actor", "karim")  # fmt: skip
    assert rejected.exit_code == 0, rejected.output
    assert "rejected offices, review #1: drop the e-mail column" in rejected.output
    submitted.refused("wrong-role", "dataset", "reopen", "offices", "--reason", "x",
                      "--actor", "karim")  # fmt: skip
    reopened = submitted.ok("dataset", "reopen", "offices", "--reason", "rework",
                            "--actor", "amina")  # fmt: skip
    assert reopened["dataset"]["state"] == "DRAFT"
    history = submitted("dataset", "history", "offices")
    assert "dataset.reject" in history.output
    assert "drop the e-mail column" in history.output


def test_register_refuses_a_tag_ckan_refuses(people: Cli):
    """`dataset register --tag` with a tag CKAN refuses exits 2 with invalid-tag naming the
    rule; nothing is registered."""
    for tag in ("a/b", "x" * 150, "<script>", "ab\u202ecd"):
        args = register_args(people, **{"--tag": tag})
        refused = people.refused("invalid-tag", *args)
        assert "tag 1" in refused.output
    assert people.ok("dataset", "list")["datasets"] == []
