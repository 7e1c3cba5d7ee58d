"""The agency specs agree with the schema registry and with one another."""

import pytest

from connectors.ministries import AGENCIES, AgencySpec
from exchange import SubsystemId
from schemas import Kind, default_registry

REGISTRY = default_registry()


def test_the_five_agencies_and_their_subsystems():
    """AGENCIES holds the five agencies under their keys, each with its subsystem identity."""
    assert {key: spec.subsystem for key, spec in AGENCIES.items()} == {
        "civil": "MA/GOV/MOI/CIVIL-REGISTRY",
        "tax": "MA/GOV/MEF/TAX",
        "customs": "MA/GOV/MEF/CUSTOMS",
        "treasury": "MA/GOV/MEF/TREASURY",
        "property": "MA/GOV/MEF/STATE-PROPERTY",
    }
    for spec in AGENCIES.values():
        assert str(SubsystemId.parse(spec.subsystem)) == spec.subsystem
        assert spec.title


@pytest.mark.parametrize("key", sorted(AGENCIES))
def test_every_handled_type_is_registered(key):
    """Each message type an agency handles exists in the schema registry."""
    spec = AGENCIES[key]
    assert [t for t in spec.handlers if t not in REGISTRY] == []
    assert all(callable(handler) for handler in spec.handlers.values())


@pytest.mark.parametrize("key", sorted(AGENCIES))
def test_provides_pairs_a_request_with_its_response(key):
    """Each provided request is a registered request, handled, answered by a registered response."""
    spec = AGENCIES[key]
    for request, response in spec.provides.items():
        assert REGISTRY.get(request).kind is Kind.REQUEST
        assert REGISTRY.get(response).kind is Kind.RESPONSE
        assert request in spec.handlers


@pytest.mark.parametrize("key", sorted(AGENCIES))
def test_published_and_subscribed_types_are_events(key):
    """Everything published or subscribed to is a registered event type."""
    spec = AGENCIES[key]
    for event in (*spec.publishes, *spec.subscribes):
        assert REGISTRY.get(event).kind is Kind.EVENT


def test_every_subscribed_topic_has_a_publisher():
    """Each topic some agency subscribes to is published by some agency."""
    published = {event for spec in AGENCIES.values() for event in spec.publishes}
    subscribed = {topic for spec in AGENCIES.values() for topic in spec.subscribes}
    assert subscribed
    assert subscribed <= published


def test_every_call_reaches_an_agency_that_takes_it():
    """Each call targets an agency that provides the request, or handles the one-way message."""
    calls = [(key, call) for key, spec in AGENCIES.items() for call in spec.calls]
    assert calls
    for caller, (message_type, target) in calls:
        assert target in AGENCIES, caller
        kind = REGISTRY.get(message_type).kind
        assert kind in {Kind.REQUEST, Kind.MESSAGE}
        if kind is Kind.REQUEST:
            assert message_type in AGENCIES[target].provides
        else:
            assert message_type in AGENCIES[target].handlers


def test_declared_flows():
    """The flows of the design: tax asks civil, treasury alerts tax and tax answers with its
    verdicts, both follow customs."""
    assert AGENCIES["tax"].calls == (
        ("civil.person-lookup.request", "civil"),
        ("tax.alert-verdict", "treasury"),
    )
    assert AGENCIES["treasury"].calls == (("treasury.suspicious-transaction-alert", "tax"),)
    customs_events = ("customs.declaration-lodged", "customs.declaration-cleared")
    assert AGENCIES["customs"].publishes == customs_events
    assert AGENCIES["tax"].subscribes == customs_events
    assert AGENCIES["treasury"].subscribes == customs_events


def test_a_spec_without_a_handler_for_what_it_provides_is_refused():
    """AgencySpec refuses to promise a request or topic it has no handler for."""
    with pytest.raises(ValueError, match=r"no handler for civil\.person-lookup\.request"):
        AgencySpec(
            subsystem="MA/GOV/MOI/CIVIL-REGISTRY",
            title="Broken",
            handlers={},
            provides={"civil.person-lookup.request": "civil.person-lookup.response"},
            publishes=(),
            subscribes=(),
            calls=(),
        )


def test_specs_are_frozen():
    """A spec cannot be changed after it is built."""
    with pytest.raises(AttributeError):
        AGENCIES["civil"].title = "other"  # type: ignore[misc]
