"""Who may read what, beside what governance itself decides on changes: the rules the API
and the console share.

=============================== =============================================================
what                            who
=============================== =============================================================
the registry (members...)       anyone holding a role (it is in the public directory anyway)
a dataset, its review, history  people of the owning agency; operators and auditors: all
                                (to anyone else it is as unknown as a missing one)
the audit log, traffic, users   operators and auditors
a user, a user's tokens         that user; operators and auditors
=============================== =============================================================
"""

from __future__ import annotations

from governance import Dataset, OtherAgency, Role, UnknownDataset, User, Workflow, WrongRole

ANY_ROLE = frozenset(Role)
OVERSIGHT = frozenset({Role.OPERATOR, Role.AUDITOR})  # read everything, every agency
OPERATORS = frozenset({Role.OPERATOR})


def _listed(roles: frozenset[Role]) -> str:
    return " or ".join(f"an {r}" if r[0] in "aeiou" else f"a {r}" for r in sorted(roles))


def require_role(user: User, allowed: frozenset[Role], action: str, verb: str) -> None:
    """Refuse with :class:`WrongRole` unless ``user`` holds one of ``allowed`` (``verb`` says
    what was tried, e.g. "read the audit log")."""
    if not user.roles & allowed:
        held = ", ".join(sorted(user.roles)) or "no role"
        raise WrongRole(
            f"{user.user_id} ({held}) may not {verb}: only {_listed(allowed)} may",
            action=action,
        )


def require_self_or_oversight(user: User, owner: str, action: str, verb: str) -> None:
    """Refuse with :class:`WrongRole` unless ``user`` is ``owner``, an operator or an auditor."""
    if user.user_id != owner:
        require_role(user, OVERSIGHT, action, verb)


def require_agency(user: User, agency: str, action: str, dataset_id: str = "") -> None:
    """Refuse with :class:`OtherAgency` (or :class:`WrongRole` for someone without a role)
    unless ``user`` may read ``agency``'s datasets: its own people, operators, auditors."""
    if user.roles & OVERSIGHT:
        return
    require_role(user, ANY_ROLE, action, "read datasets")
    if user.agency != agency:
        what = f"dataset {dataset_id}" if dataset_id else "the datasets"
        raise OtherAgency(
            f"{user.user_id} belongs to {user.agency}, but {what} of {agency} may be read only "
            f"by people of {agency}, operators and auditors",
            action=action,
            dataset_id=dataset_id,
        )


def readable_dataset(workflow: Workflow, user: User, dataset_id: str) -> Dataset:
    """The dataset, if ``user`` may read it (its agency's people, operators, auditors).

    To anyone else another agency's dataset is as unknown as a missing one: the same
    :class:`UnknownDataset`, message and all, so that no answer tells whether it exists.
    Every read of, and every action on, one dataset asks this first."""
    found = workflow.dataset(dataset_id)
    readable = user.roles & OVERSIGHT or (user.roles and user.agency == found.owner_agency)
    if not readable:
        raise UnknownDataset.of(dataset_id)
    return found
