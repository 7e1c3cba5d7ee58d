"""Open-data safety: no sequence of workflow actions, by whoever, publishes a dataset that is
not PUBLIC, not approved by a second person, holds an unresolved PII finding, or whose bytes
are not the bytes approved (changed in the data store, or submitted anew since).

A hypothesis state machine drives the real ``Workflow`` (SQLite) and the real ``OpenData``
pipeline (data store, PII screening, Frictionless validation, derivations) with random
sequences of actions by different people; the portal is an in-memory recording fake passed
where ``OpenData`` takes its publisher (real CKAN publishing is proven in tests/opendata).
The machine keeps its own model of what each dataset should be, so each publication the
portal receives is judged against the model, not against the flags the code reads.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from governance import (
    ChangedSinceApproval,
    ColumnOp,
    DerivationResult,
    Drop,
    FourEyes,
    GeneraliseToPrefix,
    GovernanceError,
    GovernanceStore,
    IllegalTransition,
    NeedsDerivation,
    NotPublishable,
    PiiUnresolved,
    State,
    Workflow,
    derive_csv,
    record_derivation,
)
from governance.pii import PiiError
from opendata import (
    DataFiles,
    DataReport,
    MissingFile,
    NotPublished,
    OpenData,
    OpenDataError,
    PublishResult,
    WithdrawResult,
)

# ---- who is who, and what they send ---------------------------------------------------

# DGI owns the data; DNUM runs the platform; omar is of another agency (MEF).
PEOPLE: dict[str, tuple[str, frozenset[str]]] = {
    "root": ("DNUM", frozenset({"operator"})),
    "amina": ("DGI", frozenset({"steward"})),
    "samir": ("DGI", frozenset({"steward"})),
    "karim": ("DGI", frozenset({"approver"})),
    "nadia": ("DGI", frozenset({"steward", "approver"})),
    "audrey": ("DGI", frozenset({"auditor"})),
    "omar": ("MEF", frozenset({"steward", "approver"})),
}
# ds-a and ds-b are DGI's, ds-m MEF's; ds-new is registered (by whoever) during a run.
DATASETS = ("ds-a", "ds-a", "ds-a", "ds-b", "ds-m", "ds-new")
STARTS = (
    "draft",
    "classified",
    "in-review",
    "in-review-pii",
    "approved",
    "published",
    "published+in-review",
    "published+rejected",
)
SCHEMA = {
    "fields": [
        {"name": "region", "type": "string", "constraints": {"required": True}},
        {"name": "year", "type": "integer"},
        {"name": "revenue", "type": "number"},
        {"name": "contact", "type": "string"},
    ]
}
HEADER = "region,year,revenue,contact\n"
FILES = {
    "clean": HEADER + "Casablanca-Settat,2025,1200.5,guichet central\nSouss-Massa,2025,310.25,\n",
    "clean-v2": HEADER + "Oriental,2024,99.5,bureau regional\nDraa-Tafilalet,2024,12,\n",
    "phone": HEADER
    + "Casablanca-Settat,2025,1200.5,0612345678\nSouss-Massa,2025,310.25,0661234567\n",
    "email": HEADER + "amina@example.ma,2025,1,\nkarim@example.ma,2025,2,\n",
    "national-id": HEADER + "Casablanca-Settat,2025,1,BE123456\nSouss-Massa,2025,2,AB654321\n",
    "invalid": HEADER + ",20x5,1,\n",
}
# What the screener must find in each file: the model's own knowledge of where PII is.
FINDINGS: dict[str, frozenset[str]] = {
    "clean": frozenset(),
    "clean-v2": frozenset(),
    "phone": frozenset({"contact:phone"}),
    "email": frozenset({"region:email"}),
    "national-id": frozenset({"contact:national-id"}),
}
PII_COLUMN = {"email": "region"}  # the others hold their personal data in ``contact``
PLANS = ("generalise-2", "generalise-7", "drop")
# What a derivation leaves for the screener: None when the result no longer fits the schema
# (dropping ``contact`` loses a schema field); 7 characters of an identity card number still
# look like one.
DERIVED_FINDINGS: dict[tuple[str, str], frozenset[str] | None] = {
    **{(kind, "drop"): None for kind in ("clean", "phone", "email", "national-id")},
    **{(kind, "generalise-2"): frozenset() for kind in ("clean", "phone", "email", "national-id")},
    ("clean", "generalise-7"): frozenset(),
    ("phone", "generalise-7"): frozenset(),
    ("email", "generalise-7"): frozenset(),
    ("national-id", "generalise-7"): frozenset({"contact:national-id"}),
}

# Who may do what, from which states (the design's table, written out again for the model).
MAY = {
    "register": {"steward"},
    "classify": {"steward"},
    "submit": {"steward"},
    "resolve": {"steward"},
    "derive": {"steward"},
    "approve": {"approver"},
    "reject": {"approver"},
    "reopen": {"steward"},
    "publish": {"steward", "operator"},
    "withdraw": {"steward", "approver", "operator"},
}
ANY_AGENCY = {"publish": {"operator"}, "withdraw": {"operator"}}
FROM = {
    "classify": {State.DRAFT, State.CLASSIFIED},
    "submit": {State.CLASSIFIED, State.APPROVED, State.PUBLISHED},
    "resolve": {State.IN_REVIEW},
    "approve": {State.IN_REVIEW},
    "reject": {State.IN_REVIEW},
    "reopen": {State.REJECTED},
    "publish": {State.APPROVED},
    "withdraw": {State.PUBLISHED},
}
LEGAL = {"legal_basis": "Loi 31-13 (access to information)", "justification": "aggregates"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_ops(kind: str, plan: str) -> list[ColumnOp]:
    column = PII_COLUMN.get(kind, "contact")
    if plan == "drop":
        return [Drop("contact")]
    return [GeneraliseToPrefix(column, 2 if plan == "generalise-2" else 7)]


# ---- the model --------------------------------------------------------------------------


@dataclass(frozen=True)
class Classified:
    level: str
    personal: bool
    by: str

    @property
    def publishable(self) -> bool:
        return self.level == "PUBLIC" and not self.personal


@dataclass
class ReviewModel:
    review_id: int
    data: bytes
    submitter: str
    # finding id -> who resolved it (None: open)
    findings: dict[str, str | None]
    decision: str = "open"

    @property
    def sha(self) -> str:
        return sha256(self.data)


@dataclass(frozen=True)
class Approval:
    """What an approval covered, frozen when it was given."""

    review_id: int
    data: bytes
    approver: str
    participants: frozenset[str]
    classification: Classified
    unresolved: frozenset[str]


@dataclass
class DatasetModel:
    owner: str
    state: State = State.DRAFT
    classification: Classified | None = None
    review: ReviewModel | None = None
    # the approval publishing may act on: cleared by anything that changes what it covered
    approval: Approval | None = None
    live: bytes | None = None


@dataclass(frozen=True)
class Sent:
    """One publish call the portal received, and what the model said was wrong with it."""

    dataset: Mapping[str, Any]
    data: bytes
    approval_ref: str
    violations: tuple[str, ...]


@dataclass
class RecordingPortal:
    """An in-memory portal in place of ``Publisher``: it keeps every publish call with the
    exact bytes and metadata it was given, and has ``judge`` check each as it arrives."""

    judge: Callable[[Mapping[str, Any], bytes, str], list[str]]
    received: list[Sent] = field(default_factory=list)
    live: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    withdrawn: list[str] = field(default_factory=list)

    def publish(
        self,
        dataset: Mapping[str, Any],
        csv_path: Path | str,
        table_schema: Mapping[str, Any],
        approval_ref: str,
        *,
        validated: DataReport | None = None,
        package_id: str | None = None,
        approvers: Sequence[str] = (),
    ) -> PublishResult:
        assert package_id in {None, f"pkg-{dataset['dataset_id']}"}  # what governance recorded
        assert approvers, "a publication names who approved it (its signed release says so)"
        assert table_schema == SCHEMA
        assert validated is not None
        assert validated.valid
        data = Path(csv_path).read_bytes()
        dataset_id = str(dataset["dataset_id"])
        sent = Sent(
            dict(dataset), data, approval_ref, tuple(self.judge(dataset, data, approval_ref))
        )
        self.received.append(sent)
        assert not sent.violations, f"the portal received {dataset_id}: {sent.violations}"
        version, current = self.live.get(dataset_id, (0, b""))
        if version and current == data:
            return PublishResult(
                "unchanged", f"pkg-{dataset_id}", dataset_id, version, sha256(data)
            )
        self.live[dataset_id] = (version + 1, data)
        status = "created" if version == 0 else "updated"
        return PublishResult(status, f"pkg-{dataset_id}", dataset_id, version + 1, sha256(data))

    def withdraw(
        self, dataset: Mapping[str, Any], reason: str, *, package_id: str | None = None
    ) -> WithdrawResult:
        dataset_id = str(dataset["dataset_id"])
        assert package_id in {None, f"pkg-{dataset_id}"}
        if dataset_id not in self.live:
            raise NotPublished(f"{dataset_id} has no package on the portal")
        version, _ = self.live.pop(dataset_id)
        self.withdrawn.append(dataset_id)
        return WithdrawResult(dataset_id, f"pkg-{dataset_id}", dataset_id, version, 1, reason)


def gate(action: str, actor: str, ds: DatasetModel | None) -> set[str]:
    """The codes the workflow may refuse ``action`` by ``actor`` with (any of them; empty:
    allowed as far as role, agency and state go)."""
    if ds is None:
        return {"unknown-dataset"}
    agency, roles = PEOPLE[actor]
    codes = set()
    if not roles & MAY[action]:
        codes.add("wrong-role")
    if agency != ds.owner and not roles & ANY_AGENCY.get(action, set()):
        codes.add("other-agency")
    live = action == "withdraw" and ds.live is not None  # withdrawn from any state while live
    if action in FROM and ds.state not in FROM[action] and not live:
        codes.add("illegal-transition")
    return codes


# Outcomes of every rule, over all runs (the test checks the dangerous paths were taken).
OUTCOMES: Counter[tuple[str, str]] = Counter()


class OpenDataSafety(RuleBasedStateMachine):
    """Random workflow actions by different people; the model says what each should do."""

    def __init__(self, template: Path, root: Path) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(dir=root))
        shutil.copy(template, self.dir / "governance.sqlite")
        self.store = GovernanceStore.open(str(self.dir / "governance.sqlite"), migrate=False)
        self.flow = Workflow(self.store)
        self.portal = RecordingPortal(self.judge)
        self.files = DataFiles(self.dir / "data")
        # the seam: OpenData takes its publisher as an argument
        self.pipeline = OpenData(self.flow, self.files, self.portal)  # type: ignore[arg-type]
        self.model: dict[str, DatasetModel] = {}
        self.stored: dict[str, bytes] = {}  # what the data store should hold, by name
        self.sources: list[Path] = []
        self.touched: set[str] = set()

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------------------

    def attempt(self, name: str, expected: set[str], call: Callable[[], Any]) -> Any:
        """Run ``call``: it must succeed when ``expected`` is empty, else be refused with one
        of ``expected``. Any exception without the project's error type fails the test."""
        refusal: GovernanceError | OpenDataError | PiiError | None = None
        try:
            result = call()
        except (GovernanceError, OpenDataError, PiiError) as exc:
            refusal = exc
        if refusal is not None:
            code = refusal.code
            OUTCOMES[name, code] += 1
            event(f"{name}: {code}")
            assert isinstance(code, str)
            assert code
            assert expected, f"{name} refused ({code}: {refusal.message}); the model allowed it"
            assert code in expected, f"{name} refused with {code}, expected one of {expected}"
            return None
        OUTCOMES[name, "ok"] += 1
        event(f"{name}: ok")
        assert not expected, f"{name} succeeded; the model expected a refusal: {expected}"
        return result

    def touch(self, dataset_id: str) -> DatasetModel | None:
        """The model of ``dataset_id`` (None: not registered); the workflow's record of it is
        compared with the model after this step."""
        self.touched.add(dataset_id)
        return self.model.get(dataset_id)

    def source(self, data: bytes) -> Path:
        path = self.dir / f"source-{len(self.sources)}.csv"
        path.write_bytes(data)
        self.sources.append(path)
        return path

    def judge(self, dataset: Mapping[str, Any], data: bytes, approval_ref: str) -> list[str]:
        """What is wrong, by the model, with the portal receiving ``data`` for ``dataset``."""
        ds = self.model.get(str(dataset["dataset_id"]))
        if ds is None:
            return ["a dataset that was never registered"]
        problems = []
        if ds.state is State.WITHDRAWN:
            problems.append("the dataset was withdrawn")
        if ds.state is not State.APPROVED:
            problems.append(f"the dataset is {ds.state}, not APPROVED")
        approval = ds.approval
        if approval is None:
            return [*problems, "no approval in force (never given, or undone since)"]
        if ds.classification != approval.classification:
            problems.append("classified again since the approval")
        if not approval.classification.publishable:
            problems.append(f"approved while {approval.classification}")
        if ds.classification is None or not ds.classification.publishable:
            problems.append(f"now classified {ds.classification}")
        if dataset.get("classification") != "PUBLIC":
            problems.append(f"metadata says {dataset.get('classification')}")
        if approval.approver in approval.participants:
            problems.append(f"{approval.approver} approved their own work")
        if approval.unresolved:
            problems.append(f"unresolved PII findings {sorted(approval.unresolved)}")
        if data != approval.data or sha256(data) != sha256(approval.data):
            problems.append("not the bytes approved")
        if approval_ref != f"review:{approval.review_id}":
            problems.append(f"approval reference {approval_ref}")
        return problems

    def submitted(
        self, actor: str, dataset_id: str, data: bytes, findings: frozenset[str] | None
    ) -> bool:
        """Submit ``data`` through the pipeline (True: it went to review). ``findings``: what
        the screener must find in it, by the model (None: it does not fit the schema)."""
        ds = self.touch(dataset_id)
        expected = gate("submit", actor, ds)
        if ds is not None and (ds.classification is None or not ds.classification.publishable):
            expected.add("not-publishable")
        if findings is None:
            expected.add("invalid-data")
        path = self.source(data)
        submission = self.attempt(
            "submit", expected, lambda: self.pipeline.submit(actor, dataset_id, path)
        )
        if not expected - {"invalid-data"}:
            self.stored[sha256(data)] = data  # kept (and screened) before the verdict
        if submission is None:
            return False
        assert ds is not None
        assert findings is not None
        assert submission.review.content_sha256 == sha256(data)
        found = {f.finding_id for f in submission.review.findings}
        assert found == findings, f"the screener found {found}, the model {set(findings)}"
        ds.review = ReviewModel(submission.review.review_id, data, actor, dict.fromkeys(found))
        ds.approval = None
        ds.state = State.IN_REVIEW
        return True

    def derived(self, kind: str, plan: str) -> tuple[DerivationResult, bytes]:
        """Derive a file of ``kind`` by ``plan``: the result and the derived bytes."""
        source = self.source(FILES[kind].encode())
        out = self.dir / f"derived-{len(self.sources)}.csv"
        result = derive_csv(source, out, plan_ops(kind, plan))
        data = out.read_bytes()
        assert result.target_sha256 == sha256(data)
        return result, data

    def record(
        self, actor: str, dataset_id: str, result: DerivationResult, plan: str, kind: str
    ) -> None:
        """Record a derivation; under review of the same bytes it resolves the findings on
        the columns it changed."""
        ds = self.touch(dataset_id)
        expected = {"unknown-dataset"} if ds is None else set()
        if ds is not None:
            agency, roles = PEOPLE[actor]
            if "steward" not in roles:
                expected.add("wrong-role")
            if agency != ds.owner:
                expected.add("other-agency")
            review = ds.review if ds.state is State.IN_REVIEW else None
            if review is not None and review.sha != result.target_sha256:
                expected.add("derived-not-reviewed")
        recorded = self.attempt(
            "derive",
            expected,
            lambda: record_derivation(self.store, actor, dataset_id, result, reason="open data"),
        )
        if recorded is None:
            return
        assert ds is not None
        resolved: set[str] = set()
        if ds.state is State.IN_REVIEW and ds.review is not None:
            columns = {op.column for op in plan_ops(kind, plan)}
            for finding, by in ds.review.findings.items():
                if by is None and finding.rsplit(":", 1)[0] in columns:
                    ds.review.findings[finding] = actor
                    resolved.add(finding)
        assert set(recorded.resolved) == resolved
        if resolved:
            OUTCOMES["derive", "resolved findings"] += 1

    # ---- rules ------------------------------------------------------------------------

    @initialize(
        starts=st.tuples(st.sampled_from((*STARTS, "approved")), st.sampled_from(STARTS)),
        classifier=st.sampled_from(["amina", "samir", "nadia"]),
        submitter=st.sampled_from(["amina", "samir", "nadia"]),
        damage=st.sampled_from([None, None, "overwrite", "delete"]),
        mef_classified=st.booleans(),
    )
    def datasets(
        self,
        starts: tuple[str, str],
        classifier: str,
        submitter: str,
        damage: str | None,
        mef_classified: bool,
    ) -> None:
        """DGI's two datasets start at random points of the ordinary path, so that a run
        reaches far (perhaps with the data store already damaged); MEF's is registered,
        perhaps classified, by omar."""
        for dataset_id, start in zip(("ds-a", "ds-b"), starts, strict=True):
            self.register("amina", dataset_id)
            if start == "draft":
                continue
            self.classify(classifier, dataset_id, "PUBLIC", personal=False)
            if start != "classified":
                kind = "phone" if start == "in-review-pii" else "clean"
                self.submit(submitter, dataset_id, kind)
            if start.startswith(("approved", "published")):
                self.approve("karim", dataset_id)
            if start.startswith("published"):
                self.publish("root", dataset_id)
            if start.startswith("published+"):  # a new version under review, the old live
                self.submit(submitter, dataset_id, "clean-v2")
            if start == "published+rejected":
                self.reject("karim", dataset_id)
        if damage is not None:
            self.tamper_with_the_store("ds-a", "phone", delete=damage == "delete")
        self.register("omar", "ds-m")
        if mef_classified:
            self.classify("omar", "ds-m", "PUBLIC", personal=False)

    @rule(
        actor=st.sampled_from(["amina", "amina", "samir", "nadia", "omar", "karim", "root"]),
        dataset_id=st.sampled_from(["ds-new", "ds-a"]),
    )
    def register(self, actor: str, dataset_id: str) -> None:
        self.touched.add(dataset_id)
        expected = set()
        if "steward" not in PEOPLE[actor][1]:
            expected.add("wrong-role")
        if dataset_id in self.model:
            expected.add("already-exists")
        done = self.attempt(
            "register",
            expected,
            lambda: self.flow.register_dataset(
                actor,
                dataset_id,
                title={"fr": f"Recettes {dataset_id}"},
                description={"fr": "Recettes fiscales par région"},
                source="exports/revenue.csv",
                table_schema=SCHEMA,
                licence="cc-by",
                update_frequency="yearly",
            ),
        )
        if done is not None:
            self.model[dataset_id] = DatasetModel(owner=PEOPLE[actor][0])

    @rule(
        actor=st.sampled_from(["amina", "samir", "nadia", "nadia", "omar", "karim"]),
        dataset_id=st.sampled_from(DATASETS),
        level=st.sampled_from(["PUBLIC", "PUBLIC", "PUBLIC", "INTERNAL", "RESTRICTED", "SECRET"]),
        personal=st.sampled_from([False, False, True]),
    )
    def classify(self, actor: str, dataset_id: str, level: str, personal: bool) -> None:
        ds = self.touch(dataset_id)
        expected = gate("classify", actor, ds)
        if ds is not None and ds.live is not None and (level != "PUBLIC" or personal):
            expected.add("not-publishable")  # a live version stays PUBLIC until withdrawn
        done = self.attempt(
            "classify",
            expected,
            lambda: self.flow.classify(
                actor, dataset_id, level=level, personal_data=personal, **LEGAL
            ),
        )
        if done is not None:
            assert ds is not None
            ds.classification = Classified(level, personal, actor)
            ds.state = State.CLASSIFIED
            ds.approval = None

    @rule(
        actor=st.sampled_from(["amina", "samir", "nadia", "nadia", "omar", "karim"]),
        dataset_id=st.sampled_from(DATASETS),
        kind=st.sampled_from(["clean", "clean", "clean-v2", "phone", "email", "national-id"])
        | st.just("invalid"),
    )
    def submit(self, actor: str, dataset_id: str, kind: str) -> None:
        self.submitted(actor, dataset_id, FILES[kind].encode(), FINDINGS.get(kind))

    @rule(
        actor=st.sampled_from(["amina", "samir", "nadia", "nadia", "omar", "karim"]),
        dataset_id=st.sampled_from(DATASETS),
        which=st.integers(0, 2) | st.just("region:phone"),
        resolution=st.sampled_from(["justify", "justify", "drop", "generalise"]),
    )
    def resolve(self, actor: str, dataset_id: str, which: int | str, resolution: str) -> None:
        ds = self.touch(dataset_id)
        expected = gate("resolve", actor, ds)
        open_review = ds.review if ds is not None and ds.state is State.IN_REVIEW else None
        finding = which if isinstance(which, str) else "contact:phone"
        if open_review is not None and isinstance(which, int) and open_review.findings:
            finding = sorted(open_review.findings)[which % len(open_review.findings)]
        if open_review is not None and finding not in open_review.findings:
            expected.add("unknown-finding")
        if open_review is not None and resolution != "justify":
            expected.add("needs-derivation")
        done = self.attempt(
            "resolve",
            expected,
            lambda: self.flow.resolve_finding(
                actor, dataset_id, finding, resolution=resolution, reason="a tariff code"
            ),
        )
        if done is not None:
            assert open_review is not None
            open_review.findings[finding] = actor

    @rule(
        actor=st.sampled_from(["amina", "samir", "nadia", "omar", "karim"]),
        dataset_id=st.sampled_from(DATASETS),
        kind=st.sampled_from(["phone", "email", "national-id", "clean"]),
        plan=st.sampled_from(PLANS),
    )
    def derive_and_submit(self, actor: str, dataset_id: str, kind: str, plan: str) -> None:
        """``tabadul dataset derive --submit``: derive, submit the result, record it."""
        result, data = self.derived(kind, plan)
        if self.submitted(actor, dataset_id, data, DERIVED_FINDINGS[kind, plan]):
            self.record(actor, dataset_id, result, plan, kind)  # as the CLI: once submitted

    @rule(
        actor=st.sampled_from(["amina", "samir", "nadia", "omar", "karim"]),
        dataset_id=st.sampled_from(DATASETS),
        kind=st.sampled_from(["phone", "email", "national-id", "clean"]),
        plan=st.sampled_from(PLANS),
    )
    def derive_only(self, actor: str, dataset_id: str, kind: str, plan: str) -> None:
        """A derivation recorded without submitting its result: it resolves nothing unless
        its bytes are the ones under review."""
        result, _ = self.derived(kind, plan)
        self.record(actor, dataset_id, result, plan, kind)

    @rule(
        actor=st.sampled_from(["karim", "karim", "nadia", "nadia", "amina", "omar", "root"]),
        dataset_id=st.sampled_from(DATASETS),
    )
    def approve(self, actor: str, dataset_id: str) -> None:
        ds = self.touch(dataset_id)
        expected = gate("approve", actor, ds)
        review = ds.review if ds is not None and ds.state is State.IN_REVIEW else None
        participants: set[str] = set()
        unresolved: frozenset[str] = frozenset()
        if ds is not None and review is not None:
            assert ds.classification is not None
            resolvers = {by for by in review.findings.values() if by is not None}
            participants = {ds.classification.by, review.submitter, *resolvers}
            if actor in participants:
                expected.add("four-eyes")
            if not ds.classification.publishable:
                expected.add("not-publishable")
            unresolved = frozenset(f for f, by in review.findings.items() if by is None)
            if unresolved:
                expected.add("pii-unresolved")
        done = self.attempt("approve", expected, lambda: self.flow.approve(actor, dataset_id))
        if done is not None:
            assert ds is not None
            assert review is not None
            assert ds.classification is not None
            review.decision = "approved"
            ds.state = State.APPROVED
            ds.approval = Approval(
                review.review_id,
                review.data,
                actor,
                frozenset(participants),
                ds.classification,
                unresolved,
            )

    @rule(
        actor=st.sampled_from(["karim", "nadia", "amina", "omar"]),
        dataset_id=st.sampled_from(DATASETS),
    )
    def reject(self, actor: str, dataset_id: str) -> None:
        ds = self.touch(dataset_id)
        expected = gate("reject", actor, ds)
        done = self.attempt(
            "reject", expected, lambda: self.flow.reject(actor, dataset_id, reason="not yet")
        )
        if done is not None:
            assert ds is not None
            assert ds.review is not None
            ds.review.decision = "rejected"
            ds.state = State.REJECTED
            ds.approval = None

    @rule(
        actor=st.sampled_from(["amina", "samir", "nadia", "karim", "omar"]),
        dataset_id=st.sampled_from(DATASETS),
    )
    def reopen(self, actor: str, dataset_id: str) -> None:
        ds = self.touch(dataset_id)
        expected = gate("reopen", actor, ds)
        done = self.attempt(
            "reopen", expected, lambda: self.flow.reopen(actor, dataset_id, reason="rework")
        )
        if done is not None:
            assert ds is not None
            ds.state = State.DRAFT
            ds.approval = None

    @rule(
        actor=st.sampled_from(["amina", "samir", "nadia", "root", "root", "omar", "karim"]),
        dataset_id=st.sampled_from(DATASETS),
    )
    def publish(self, actor: str, dataset_id: str) -> None:
        ds = self.touch(dataset_id)
        expected = gate("publish", actor, ds)
        if ds is not None and (ds.classification is None or not ds.classification.publishable):
            expected.add("not-publishable")
        approval = ds.approval if ds is not None else None
        if approval is not None:
            held = self.stored.get(sha256(approval.data))
            if held is None:
                expected.add("missing-file")
            elif held != approval.data:
                expected.add("changed-since-approval")
        sent_before = len(self.portal.received)
        done = self.attempt("publish", expected, lambda: self.pipeline.publish(actor, dataset_id))
        if done is None:
            assert len(self.portal.received) == sent_before, "a refused publish sent bytes"
            return
        assert ds is not None
        assert approval is not None
        assert self.portal.received[-1].data == approval.data
        assert done.sha256 == sha256(approval.data)
        ds.state = State.PUBLISHED
        ds.live = approval.data

    @rule(
        actor=st.sampled_from(["amina", "karim", "root", "omar", "audrey"]),
        dataset_id=st.sampled_from(DATASETS),
    )
    def withdraw(self, actor: str, dataset_id: str) -> None:
        ds = self.touch(dataset_id)
        expected = gate("withdraw", actor, ds)
        done = self.attempt(
            "withdraw",
            expected,
            lambda: self.pipeline.withdraw(actor, dataset_id, reason="taken down"),
        )
        if done is not None:
            assert ds is not None
            ds.state = State.WITHDRAWN
            ds.live = None
            ds.approval = None
            if ds.review is not None and ds.review.decision == "open":
                ds.review.decision = "superseded"

    @rule(
        dataset_id=st.sampled_from(DATASETS),
        kind=st.sampled_from(["phone", "national-id", "clean-v2", "invalid"]),
        delete=st.sampled_from([False, False, True]),
    )
    def tamper_with_the_store(self, dataset_id: str, kind: str, delete: bool) -> None:
        """Someone with access to the data store overwrites (or deletes) the file behind the
        SHA-256 of the dataset's latest review."""
        ds = self.touch(dataset_id)
        if ds is None or ds.review is None:
            return
        target = self.files.root / f"{ds.review.sha}.csv"
        if delete:
            target.unlink(missing_ok=True)
            self.stored.pop(ds.review.sha, None)
        else:
            target.write_bytes(FILES[kind].encode())
            self.stored[ds.review.sha] = FILES[kind].encode()
        OUTCOMES["tamper", "delete" if delete else "overwrite"] += 1

    @rule(kind=st.sampled_from(["phone", "email"]))
    def change_the_original_file(self, kind: str) -> None:
        """The file a steward submitted changes afterwards: nothing may follow it."""
        if self.sources:
            self.sources[-1].write_bytes(FILES[kind].encode())

    # ---- invariants -------------------------------------------------------------------

    @invariant()
    def the_portal_only_ever_received_what_it_should(self) -> None:
        for sent in self.portal.received:
            assert not sent.violations, f"{sent.dataset['dataset_id']}: {sent.violations}"
        for dataset_id, (_, data) in self.portal.live.items():
            ds = self.model[dataset_id]
            assert ds.live == data, f"the portal holds other bytes of {dataset_id}"
            assert ds.classification is not None
            assert ds.classification.publishable, f"{dataset_id} is live but {ds.classification}"
        live = {dataset_id for dataset_id, ds in self.model.items() if ds.live is not None}
        assert live == set(self.portal.live)

    @invariant()
    def the_workflow_agrees_with_the_model(self) -> None:
        """The datasets this step acted on are, in the database, what the model says."""
        for dataset_id in sorted(self.touched & set(self.model)):
            ds = self.model[dataset_id]
            record = self.flow.dataset(dataset_id)
            assert record.state is ds.state, f"{dataset_id}: {record.state} vs {ds.state}"
            expected_live = sha256(ds.live) if ds.live is not None else None
            assert record.published_sha256 == expected_live
            if ds.review is not None:
                review = self.flow.review(dataset_id)
                assert review is not None
                assert review.decision == ds.review.decision
                assert set(review.unresolved) == {
                    f for f, by in ds.review.findings.items() if by is None
                }
            c = record.classification
            held = Classified(c.level.value, c.personal_data, c.classified_by) if c else None
            assert held == ds.classification
        self.touched.clear()


# ---- the property -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated governance database with the people registered, copied for each run."""
    path = tmp_path_factory.mktemp("template") / "governance.sqlite"
    store = GovernanceStore.open(str(path))
    flow = Workflow(store)
    flow.register_user(None, "root", name="Root", agency="DNUM", roles=["operator"])
    for user_id, (agency, roles) in PEOPLE.items():
        if user_id != "root":
            flow.register_user("root", user_id, name=user_id.title(), agency=agency, roles=roles)
    store.close()
    return path


def test_no_sequence_of_actions_publishes_what_it_should_not(template, tmp_path):
    """Over many random sequences of workflow actions (by stewards, approvers, an operator,
    someone of another agency, and someone tampering with the data store), the portal only
    ever receives PUBLIC, four-eyes-approved, PII-resolved, byte-exact approved data, and each
    action is allowed or refused with a code exactly as the model says."""
    OUTCOMES.clear()
    run_state_machine_as_test(
        lambda: OpenDataSafety(template, tmp_path),
        settings=settings(
            max_examples=150,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    # the runs went beyond the easy refusals: publications, approvals, damage to the store,
    # and refusals at the gates that keep data off the portal
    assert OUTCOMES["publish", "ok"] > 0
    assert OUTCOMES["approve", "ok"] > 0
    assert OUTCOMES["tamper", "overwrite"] + OUTCOMES["tamper", "delete"] > 0
    gates = ("four-eyes", "pii-unresolved", "changed-since-approval", "missing-file")
    assert sum(OUTCOMES[action, code] for action in ("approve", "publish") for code in gates)


# ---- the most dangerous paths, one by one -----------------------------------------------


class Env:
    """One dataset, DGI's people, the recording portal: enough for a single path."""

    def __init__(self, template: Path, tmp_path: Path) -> None:
        shutil.copy(template, tmp_path / "governance.sqlite")
        self.store = GovernanceStore.open(str(tmp_path / "governance.sqlite"), migrate=False)
        self.flow = Workflow(self.store)
        self.portal = RecordingPortal(lambda _ds, _data, _ref: [])
        self.pipeline = OpenData(self.flow, DataFiles(tmp_path / "data"), self.portal)  # type: ignore[arg-type]
        self.tmp = tmp_path
        self.flow.register_dataset(
            "amina",
            "revenue",
            title={"fr": "Recettes"},
            description={"fr": "Recettes fiscales par région"},
            source="exports/revenue.csv",
            table_schema=SCHEMA,
            licence="cc-by",
            update_frequency="yearly",
        )
        self.flow.classify("amina", "revenue", level="PUBLIC", personal_data=False, **LEGAL)

    def submit(self, kind: str) -> str:
        path = self.tmp / f"{kind}.csv"
        path.write_text(FILES[kind], encoding="utf-8")
        return self.pipeline.submit("amina", "revenue", path).review.content_sha256

    def stored(self, sha: str) -> Path:
        return self.pipeline.files.root / f"{sha}.csv"


@pytest.fixture
def env(template, tmp_path) -> Iterator[Env]:
    made = Env(template, tmp_path)
    yield made
    made.store.close()


def test_bytes_changed_in_the_store_after_approval_are_not_published(env):
    """Approved, then the file behind the approved SHA-256 is overwritten: publishing is
    refused (changed-since-approval), the portal receives nothing and the dataset stays
    APPROVED; submitting the approved bytes again repairs the store, and a new review of them
    publishes exactly them."""
    sha = env.submit("clean")
    env.flow.approve("karim", "revenue")
    env.stored(sha).write_text(FILES["phone"], encoding="utf-8")

    with pytest.raises(ChangedSinceApproval) as caught:
        env.pipeline.publish("amina", "revenue")
    assert caught.value.code == "changed-since-approval"
    assert (caught.value.approved, caught.value.offered) == (sha, sha256(FILES["phone"].encode()))
    assert env.portal.received == []
    assert env.flow.dataset("revenue").state is State.APPROVED

    env.stored(sha).unlink()
    with pytest.raises(MissingFile):
        env.pipeline.publish("root", "revenue")
    assert env.portal.received == []

    assert env.submit("clean") == sha
    assert env.stored(sha).read_bytes() == FILES["clean"].encode()
    env.flow.approve("karim", "revenue")
    env.pipeline.publish("amina", "revenue")
    assert [s.data for s in env.portal.received] == [FILES["clean"].encode()]


def test_a_store_file_changed_before_submission_is_screened_as_submitted(env):
    """A file already in the store under the SHA-256 of the offered bytes, but holding other
    bytes, is replaced: the screener reads the bytes submitted, so their PII is found."""
    phone = FILES["phone"].encode()
    target = env.stored(sha256(phone))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(FILES["clean"], encoding="utf-8")
    sha = env.submit("phone")
    assert env.stored(sha).read_bytes() == phone
    with pytest.raises(PiiUnresolved) as caught:
        env.flow.approve("karim", "revenue")
    assert caught.value.findings == ("contact:phone",)


def test_reclassified_internal_after_approval_is_not_published(env):
    """An approved dataset cannot be classified again; once rejected and reopened it can be
    classified INTERNAL, and then nothing publishes it. A published one cannot be classified
    INTERNAL while its version is live (withdraw it first)."""
    env.submit("clean")
    env.flow.approve("karim", "revenue")
    with pytest.raises(IllegalTransition):
        env.flow.classify("amina", "revenue", level="INTERNAL", personal_data=False, **LEGAL)
    env.pipeline.publish("amina", "revenue")
    with pytest.raises(IllegalTransition):
        env.flow.classify("samir", "revenue", level="INTERNAL", personal_data=False, **LEGAL)

    env.submit("clean-v2")
    env.flow.reject("karim", "revenue", reason="not yet")
    env.flow.reopen("amina", "revenue", reason="rework")
    with pytest.raises(NotPublishable) as caught:
        env.flow.classify("amina", "revenue", level="INTERNAL", personal_data=False, **LEGAL)
    assert caught.value.code == "not-publishable"
    assert env.flow.dataset("revenue").classification.level == "PUBLIC"

    env.pipeline.withdraw("amina", "revenue", reason="to be classified INTERNAL")
    assert env.portal.live == {}
    with pytest.raises(IllegalTransition):
        env.flow.classify("amina", "revenue", level="INTERNAL", personal_data=False, **LEGAL)
    with pytest.raises(IllegalTransition):
        env.pipeline.publish("root", "revenue")
    assert len(env.portal.received) == 1


def test_approved_then_reclassified_internal_before_publication_is_refused(env):
    """Approved, then sent back (new bytes rejected), reopened and classified INTERNAL: the
    approval no longer counts, publishing is refused and the portal receives nothing."""
    env.submit("clean")
    env.flow.approve("karim", "revenue")
    env.submit("clean-v2")
    env.flow.reject("karim", "revenue", reason="not yet")
    env.flow.reopen("amina", "revenue", reason="rework")
    env.flow.classify("amina", "revenue", level="INTERNAL", personal_data=False, **LEGAL)
    with pytest.raises(GovernanceError) as caught:
        env.pipeline.publish("amina", "revenue")
    assert caught.value.code in {"illegal-transition", "not-publishable"}
    with pytest.raises(NotPublishable):
        env.submit("clean")
    assert env.portal.received == []


def test_unresolved_pii_finding_is_not_published(env):
    """A phone number column: approval waits for the finding, a hand 'drop' is refused
    (only a derivation drops), publishing is refused and nothing reaches the portal; once a
    steward justifies keeping it, whoever justified may not approve, and another approver's
    approval publishes exactly those bytes."""
    env.submit("phone")
    with pytest.raises(PiiUnresolved) as caught:
        env.flow.approve("karim", "revenue")
    assert caught.value.code == "pii-unresolved"
    assert caught.value.findings == ("contact:phone",)
    with pytest.raises(NeedsDerivation):
        env.flow.resolve_finding(
            "amina", "revenue", "contact:phone", resolution="drop", reason="gone"
        )
    with pytest.raises(IllegalTransition) as refused:
        env.pipeline.publish("amina", "revenue")
    assert refused.value.code == "illegal-transition"
    assert env.portal.received == []
    env.flow.resolve_finding(
        "nadia", "revenue", "contact:phone", resolution="justify", reason="office numbers"
    )
    with pytest.raises(FourEyes):
        env.flow.approve("nadia", "revenue")  # she resolved the finding
    env.flow.approve("karim", "revenue")
    env.pipeline.publish("amina", "revenue")
    assert [s.data for s in env.portal.received] == [FILES["phone"].encode()]
