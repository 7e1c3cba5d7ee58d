"""The treasury's anomaly score of payments: features from earlier payments only, reasons,
the checked model store, the ledger, the feedback of tax's verdicts, the CLI and its codes."""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta

import numpy as np
import pytest
import skops.io as sio
from sklearn.preprocessing import FunctionTransformer
from typer.testing import CliRunner

from connectors.ministries import tax, treasury
from risk import (
    BadOption,
    BadTable,
    Limits,
    MissingColumn,
    ModelTampered,
    NotAPayment,
    Payment,
    PaymentModelStore,
    TableTooLarge,
    TooFewOutcomes,
    read_payments,
    retrain_payments,
    train_from,
)
from risk._payments import FEATURES, HISTORY, SUPPRESSION, history_features, train_payments
from tabadul._risk_service import payment_risk
from tabadul.cli import build_app
from tests.connectors.ministries.fakes import FakeContext, assert_valid, delivery

known_since = treasury.payee_registry().known_since
NEW_ACCOUNT = "011640000000007878787849"  # Bureau d'Etudes Atlas Conseil, known since 2026-10-27
OLD_ACCOUNT = "011810000001200034567832"  # Grands Travaux du Nord, known since 2012
UNKNOWN_ACCOUNT = "230640000000003131313149"  # not in the register


@pytest.fixture(scope="module")
def history() -> list[Payment]:
    return [Payment.from_payload(p) for p in treasury.payment_history()]


@pytest.fixture
def folder(tmp_path, history):
    train_from(tmp_path / "payments", history, known_since)
    return tmp_path / "payments"


@pytest.fixture
def scorer(folder):
    risk = payment_risk(folder)
    yield risk
    risk.close()


def _payload(serial: int, amount: str, rib: str, at: str = "2026-11-03T10:00:00Z"):
    payload = {
        "payment_id": f"TGR-2026-{serial:012d}",
        "executed_at": at,
        "value_date": at[:10],
        "amount": {"amount": amount, "currency": "MAD"},
        "debtor": {"rib": treasury.TREASURY_RIB, "holder": treasury.TREASURY_HOLDER},
        "creditor": {"rib": rib, "holder": "Payee SARL"},
        "method": "transfer",
    }
    assert_valid(treasury.PAYMENT_EXECUTED, payload)
    return payload


def _verdict(alert_id: str, verdict: str) -> dict:
    payload = tax.alert_verdict(alert_id, verdict, "looked into")
    assert_valid(tax.ALERT_VERDICT, payload)
    return payload


# -- features -------------------------------------------------------------------------------


def test_the_history_is_the_same_for_the_same_arguments_and_valid():
    first, again = treasury.payment_history(), treasury.payment_history()
    assert first == again
    assert len(first) > 300
    assert len({p["payment_id"] for p in first}) == len(first)
    for payment in first[:: len(first) // 10]:
        assert_valid(treasury.PAYMENT_EXECUTED, payment)


def test_later_payments_leave_earlier_features_unchanged(history):
    """No leakage: adding, or changing, payments after a moment changes no feature of a
    payment before it (nor does the order the payments come in)."""
    ordered, features = history_features(history, known_since)
    cut = len(ordered) // 2
    moment = ordered[cut].executed_at
    changed = [
        p if p.executed_at < moment else Payment(p.payment_id, p.executed_at, p.value_date,
                                                 p.amount * 40, p.creditor)
        for p in reversed(history)
    ]  # fmt: skip
    extra = Payment("TGR-2026-999999999999", moment + 1, date(2026, 11, 1), 9e6, OLD_ACCOUNT)
    again_ordered, again = history_features([*changed, extra], known_since)
    assert [p.payment_id for p in again_ordered[:cut]] == [p.payment_id for p in ordered[:cut]]
    np.testing.assert_array_equal(again[:cut], features[:cut])
    assert not np.array_equal(again[cut + 1 :], features[cut:])


def test_features_read_only_the_latest_history(history):
    """An account's features look back at most HISTORY payments."""
    account = OLD_ACCOUNT
    base = history[-1].executed_at + 86_400
    many = [
        Payment(f"TGR-2026-{i:012d}", base + i * 3600, date(2026, 12, 1), 1000.0, account)
        for i in range(HISTORY + 20)
    ]
    _, features = history_features(many, known_since)
    month = [name for name, _ in FEATURES].index("payments to the account in 30 days")
    assert features[-1][month] == HISTORY


# -- the model and its reasons ---------------------------------------------------------------


def test_an_unusual_payment_scores_above_ordinary_ones_with_reasons(scorer):
    ordinary = scorer.assess(_payload(900001, "2400000.00", OLD_ACCOUNT))
    unusual = scorer.assess(_payload(900002, "6200000.00", "230640000000003131313149",
                                     at="2026-11-03T02:10:00Z"))  # fmt: skip
    assert unusual["score"] > ordinary["score"]
    assert unusual["flagged"]
    assert not ordinary["flagged"]
    assert unusual["reasons"]
    assert all(r["contribution"] > 0 for r in unusual["reasons"])
    assert set(unusual["reasons"][0]["labels"]) == {"ar", "fr", "en"}


def test_reasons_are_the_score_lost_when_the_feature_is_usual(folder, history):
    """Each contribution is the score minus the score with that feature at its median."""
    model = PaymentModelStore(folder).load().model
    _, features = history_features(history, known_since)
    row = features[-1].copy()
    row[0] += 2  # a hundred times the amount
    score, reasons = model.explain(row)
    names = [name for name, _ in FEATURES]
    for reason in reasons:
        i = names.index(reason["feature"])
        usual = row.copy()
        usual[i] = model.medians[i]
        expected = score - model.scores(usual.reshape(1, -1))[0]
        assert reason["contribution"] == pytest.approx(expected, abs=1e-4)
    assert score == pytest.approx(model.scores(row.reshape(1, -1))[0])


def test_the_alert_budget_sets_the_threshold(history):
    _, features = history_features(history, known_since)
    strict, loose = (train_payments(features, budget=b) for b in (0.01, 0.1))
    assert strict.threshold > loose.threshold
    flagged = np.mean(loose.scores(features) >= loose.threshold)
    assert flagged == pytest.approx(0.1, abs=0.02)


def test_bad_budgets_and_too_little_history_are_refused(history):
    _, features = history_features(history, known_since)
    with pytest.raises(BadOption):
        train_payments(features, budget=0)
    with pytest.raises(TooFewOutcomes):
        train_payments(features[:10])


# -- the store --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["forest.skops", "state.json"])
def test_a_changed_artefact_is_refused(folder, name):
    path = folder / "versions" / "0001" / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ModelTampered):
        PaymentModelStore(folder).load()


def test_a_forest_file_with_untrusted_types_is_refused_even_with_matching_digests(folder):
    """A manifest rewritten to match a forged file passes the digests: the loader still
    admits no type beyond the forest's."""
    version = folder / "versions" / "0001"
    forged = sio.dumps(FunctionTransformer(func=print))
    (version / "forest.skops").write_bytes(forged)
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["files"]["forest.skops"] = hashlib.sha256(forged).hexdigest()
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelTampered, match="types"):
        PaymentModelStore(folder).load()


def test_a_new_version_is_picked_up_by_a_running_scorer(scorer, folder, history):
    assert scorer.stored.version == "0001"
    train_from(folder, history, known_since, budget=0.05)
    assert scorer.stored.version == "0002"
    assert scorer.stored.model.budget == 0.05


# -- payments that cannot be read ------------------------------------------------------------


def test_a_payment_scored_twice_is_kept_once_and_scores_the_same(scorer):
    payload = _payload(900004, "75000.00", OLD_ACCOUNT)
    first, again = scorer.assess(payload), scorer.assess(payload)
    assert first == again
    assert scorer.ledger.counts()["payments"] == len(treasury.payment_history()) + 1


def test_a_foreign_currency_or_malformed_payment_is_refused(scorer):
    foreign = _payload(900003, "1000.00", OLD_ACCOUNT)
    foreign["amount"]["currency"] = "EUR"
    with pytest.raises(NotAPayment):
        scorer.assess(foreign)
    with pytest.raises(NotAPayment):
        scorer.assess({"payment_id": "x"})
    assert scorer.ledger.counts()["payments"] == len(treasury.payment_history())


def test_a_history_file_is_read_with_coded_errors(tmp_path):
    good = tmp_path / "history.csv"
    good.write_text(
        "payment_id,executed_at,value_date,amount,creditor_rib\n"
        f"TGR-2026-000000000001,2026-01-05T09:00:00Z,2026-01-06,1200.50,{OLD_ACCOUNT}\n"
    )
    (payment,), source = read_payments([good])
    assert (payment.amount, payment.creditor) == (1200.5, OLD_ACCOUNT)
    missing = tmp_path / "missing.csv"
    missing.write_text("payment_id,amount\nTGR-2026-000000000001,5\n")
    with pytest.raises(MissingColumn, match="executed_at"):
        read_payments([missing])
    bad = tmp_path / "bad.csv"
    bad.write_text(
        good.read_text() + f"TGR-2026-000000000002,yesterday,2026-01-06,1,{OLD_ACCOUNT}\n"
    )
    with pytest.raises(NotAPayment, match=r"bad\.csv, line 3"):
        read_payments([bad])
    assert source.as_training()["files"][0]["name"] == "history.csv"


HEADER = "payment_id,executed_at,value_date,amount,creditor_rib\n"
ROW = f"TGR-2026-000000000001,2026-01-05T09:00:00Z,2026-01-06,1200.50,{OLD_ACCOUNT}\n"


@pytest.mark.parametrize(
    ("content", "error", "code"),
    [
        (b"", BadTable, "bad-table"),  # empty
        (HEADER.encode(), BadTable, "bad-table"),  # a header, no payment
        ((HEADER + ROW.replace(".50", ",50")).encode(), BadTable, "bad-table"),  # a cell more
        ((HEADER + ROW).replace(",", ";").encode(), MissingColumn, "missing-column"),  # dialect
        ((HEADER + ROW).encode("utf-16"), BadTable, "bad-table"),  # another encoding
        (("payment_id," * 2000 + "x\n").encode(), TableTooLarge, "table-too-large"),  # wide
        ((HEADER + ROW + "TGR-2026-000000000002,2026-01-05T09:00:00Z\n").encode(), NotAPayment,
         "not-a-payment"),  # a short row
    ],
)  # fmt: skip
def test_a_hostile_history_file_is_refused_with_a_code(tmp_path, content, error, code):
    path = tmp_path / "history.csv"
    path.write_bytes(content)
    with pytest.raises(error) as refused:
        read_payments([path])
    assert refused.value.code == code


def test_a_history_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(HEADER + ROW * 100)
    with pytest.raises(TableTooLarge):
        read_payments([path], Limits(max_bytes=1000))


def test_a_bad_budget_leaves_the_ledger_untouched(tmp_path, history):
    with pytest.raises(BadOption):
        train_from(tmp_path / "m", history, known_since, budget=0.9)
    assert not (tmp_path / "m").exists()


# -- the feedback of tax's verdicts -------------------------------------------------------------


def _alert(scorer, payload):
    screener = treasury.PaymentScreener(scorer=scorer)
    alert = screener.screen_and_alert(payload, FakeContext("MA/GOV/MEF/TREASURY"))
    assert alert is not None
    assert_valid(treasury.ALERT, alert)
    return alert


def test_a_dismissed_alert_keeps_the_same_behaviour_from_alerting_again(scorer):
    night = "2026-11-03T02:00:00Z"
    first = _alert(scorer, _payload(900010, "6200000.00", UNKNOWN_ACCOUNT, at=night))
    assert "anomalous-behaviour" in first["typologies"]
    assert scorer.decided(_verdict(first["alert_id"], "dismissed"))
    later = _payload(900011, "20000000.00", UNKNOWN_ACCOUNT, at="2026-11-03T23:00:00Z")
    same = scorer.assess(later)
    assert same["threshold"] <= same["score"] <= first["anomaly"]["score"]  # it would flag
    assert (same["flagged"], same["feedback"]["verdict"]) == (False, "dismissed")
    much_later = f"{(date(2026, 11, 3) + SUPPRESSION + timedelta(days=2)).isoformat()}T23:00:00Z"
    again = scorer.assess(dict(later, payment_id="TGR-2026-000000900012", executed_at=much_later))
    assert "feedback" not in again


def test_a_dismissed_alert_does_not_hide_a_higher_score(scorer):
    night = "2026-11-03T02:00:00Z"
    first = _alert(scorer, _payload(900013, "900000.00", UNKNOWN_ACCOUNT, at=night))
    scorer.decided(_verdict(first["alert_id"], "dismissed"))
    higher = scorer.assess(
        _payload(900014, "6200000.00", UNKNOWN_ACCOUNT, at="2026-11-03T03:00:00Z")
    )
    assert higher["score"] > first["anomaly"]["score"]
    assert higher["flagged"]
    assert "feedback" not in higher


def test_a_confirmed_alert_watches_the_account(scorer):
    first = _alert(scorer, _payload(900020, "450000.00", NEW_ACCOUNT, at="2026-11-03T02:00:00Z"))
    scorer.decided(_verdict(first["alert_id"], "confirmed"))
    small = _payload(900021, "1200.00", NEW_ACCOUNT, at="2026-11-05T10:00:00Z")
    anomaly = scorer.assess(small)
    assert (anomaly["flagged"], anomaly["feedback"]["verdict"]) == (True, "confirmed")
    earlier = scorer.assess(_payload(900022, "1200.00", NEW_ACCOUNT, at="2026-11-02T10:00:00Z"))
    assert "feedback" not in earlier  # a verdict speaks of what came after its alert


def test_a_verdict_on_an_alert_never_raised_is_kept_and_said_so(scorer):
    assert scorer.decided(_verdict("STA-2026-99999999", "confirmed")) is False
    assert scorer.ledger.counts()["verdicts"] == 1
    assert scorer.ledger.verdicts() == []


def test_retraining_leaves_confirmed_payments_out_and_judges_on_verdicts(scorer, history):
    confirmed = _alert(
        scorer, _payload(900030, "450000.00", NEW_ACCOUNT, at="2026-11-03T02:00:00Z")
    )
    dismissed = _alert(scorer, _payload(900031, "6200000.00", "230640000000003131313149"))
    scorer.decided(_verdict(confirmed["alert_id"], "confirmed"))
    scorer.decided(_verdict(dismissed["alert_id"], "dismissed"))
    scorer.decided(_verdict(dismissed["alert_id"], "dismissed"))  # a repeat changes nothing
    done = retrain_payments(scorer)
    assert done.left_out == 1
    assert done.rows == len(history) + 2 - 1
    assert done.judged == 2
    assert done.current_auc is not None
    assert done.candidate_auc is not None
    assert done.replaced == (done.candidate_auc >= done.current_auc)
    assert scorer.stored.version == (done.version if done.replaced else "0001")


def test_a_scorer_failure_leaves_the_payment_to_be_screened_again():
    calls = []

    class Failing:
        def assess(self, payment):
            calls.append(payment["payment_id"])
            raise RuntimeError("model folder unreadable")

        def alerted(self, _alert, _payment):
            raise AssertionError("never alerted")

    screener = treasury.PaymentScreener(scorer=Failing())
    payload = _payload(900040, "1000.00", OLD_ACCOUNT)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            screener.screen(payload)
    assert len(calls) == 2


def test_a_foreign_currency_payment_is_screened_by_the_rules_without_the_score(scorer):
    """The model reads MAD only; a payment in euros goes through the rules (which skip it)
    rather than failing the screening."""
    payload = _payload(900041, "7000000.00", UNKNOWN_ACCOUNT)
    payload["amount"]["currency"] = "EUR"
    before = scorer.ledger.counts()
    assert treasury.PaymentScreener(scorer=scorer).screen(payload) is None
    assert scorer.ledger.counts() == before


def test_tax_judges_the_alerts_its_investigators_looked_into():
    tax.reset_state()
    ctx = FakeContext(tax.SUBSYSTEM)
    sample = {p["payment_id"]: p for p in treasury.payments()}
    payment = sample["TGR-2026-000000123462"]  # a finding in the sample: confirmed
    alert = treasury.screen(payment, payees=treasury.payee_registry())
    assert alert is not None
    tax.on_suspicious_transaction_alert(delivery(treasury.ALERT, alert, treasury.SUBSYSTEM), ctx)
    (verdict,) = tax.judge_alerts(ctx)
    assert_valid(tax.ALERT_VERDICT, verdict)
    assert (verdict["alert_id"], verdict["verdict"]) == (alert["alert_id"], "confirmed")
    assert ctx.calls[0].to == treasury.SUBSYSTEM
    assert tax.judge_alerts(ctx) == []  # judged once
    tax.reset_state()


# -- the CLI -------------------------------------------------------------------------------


def test_the_cli_trains_and_retrains(tmp_path):
    runner = CliRunner()
    model = tmp_path / "m"
    trained = runner.invoke(build_app(), ["risk", "payments", "train", "--model", str(model),
                                          "--json"])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    report = json.loads(trained.output)
    assert (report["version"], report["rows"]) == ("0001", len(treasury.payment_history()))
    again = runner.invoke(build_app(), ["risk", "payments", "retrain", "--model", str(model),
                                        "--json"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["version"] == "0002"


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["retrain", "--model", "{tmp}/none"], "model-missing"),
        (["train", "--model", "{tmp}/m", "{tmp}/accounts.csv"], "missing-column"),
        (["train", "--model", "{tmp}/m", "--budget", "0.9"], "bad-option"),
    ],
)
def test_the_cli_refuses_with_a_code(tmp_path, args, code):
    (tmp_path / "accounts.csv").write_text("rib,known_since\n1,2020-01-01\n")
    argv = ["risk", "payments", *(a.format(tmp=tmp_path) for a in args), "--json"]
    result = CliRunner().invoke(build_app(), argv)
    assert result.exit_code == 2, result.output
    assert json.loads(result.output)["error"]["code"] == code
    assert not (tmp_path / "none").exists()
