"""Schemathesis against the app's own OpenAPI description: requests generated from it (valid
and invalid) with a valid token never cause a 5xx, and every answer conforms to the
description (status, content type, body schema, headers).

The description is read once from an app over an in-memory database (it does not depend on
the data); the calls go over HTTP to an app over a fresh database with someone holding every
role, a CA, and no portal (publishing would answer 503, as documented). schemathesis's lazy
``from_fixture`` does not run under the installed pytest (it sets a node attribute pytest 9
removed), hence ``from_dict`` plus the served URL given to each call.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode

from exchange import CAStore
from tabadul._services import Services, Settings
from tabadul.api import create_app
from tests.api.conftest import CA_PASSPHRASE, CLOSED_URL, issue_tokens, register_people
from tests.support.served import Served


def _description() -> dict:
    services = Services.open(Settings(governance_db=":memory:"))
    try:
        return create_app(services, console=False).openapi()
    finally:
        services.close()


schema = schemathesis.openapi.from_dict(_description())
EVERYONE = {
    "root": ("DNUM", ["operator"]),
    "sam": ("DOUANE", ["operator", "steward", "approver", "auditor"]),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The URL of the app under test (served over HTTP, with a CA to sign directories) and the
    token of sam, who holds every role."""
    folder = tmp_path_factory.mktemp("fuzz")
    CAStore.init(folder / "ca", "MA", CA_PASSPHRASE.encode())
    services = Services.open(
        Settings(
            governance_db=str(folder / "governance.sqlite"),
            data_dir=folder / "data",
            ckan_url=CLOSED_URL,
            ca_dir=folder / "ca",
            metrics_urls=(f"{CLOSED_URL}/metrics",),
            # the fuzzer sends bad tokens on purpose: it must not be made to wait
            sign_in_limit=1_000_000,
        )
    )
    register_people(services, EVERYONE)
    server = Served(create_app(services, console=False))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TABADUL_CA_PASSPHRASE", CA_PASSPHRASE)
        yield server.url, issue_tokens(services, ["sam"])["sam"]
    server.close()
    services.close()


@schema.parametrize()
@settings(max_examples=20)
def test_the_api_keeps_its_description(case, served):
    """Every check but positive_data_acceptance: a body of the right shape may still be
    refused by governance as invalid-input (an id in lower case, a steward of another
    agency, a message type not in the schema registry), a documented 422."""
    url, token = served
    excluded = [schemathesis.checks.positive_data_acceptance]
    if _negative_headers(case):
        # The mutated header may be Authorization, which the call puts back (with the valid
        # token): the request that arrives is then valid and rightly accepted.
        excluded.append(schemathesis.checks.negative_data_rejection)
    case.call_and_validate(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=excluded,
    )


def _negative_headers(case: schemathesis.Case) -> bool:
    """The case was generated with invalid headers."""
    meta = case.meta
    if meta is None:
        return False
    return any(
        location is ParameterLocation.HEADER and info.mode is GenerationMode.NEGATIVE
        for location, info in meta.components.items()
    )
