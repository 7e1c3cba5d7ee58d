"""The five ministry connectors, each declared as an :class:`AgencySpec`.

``AGENCIES`` maps a short key to each agency's spec:

=========== ================================ =============================================
key         subsystem                        role on the bus
=========== ================================ =============================================
civil       MA/GOV/MOI/CIVIL-REGISTRY        answers person lookups; publishes births
tax         MA/GOV/MEF/TAX                   answers compliance-certificate requests (asks
                                             civil); follows customs; receives alerts
customs     MA/GOV/MEF/CUSTOMS               publishes declarations lodged and cleared
treasury    MA/GOV/MEF/TREASURY              publishes payments; follows customs; sends
                                             suspicious-transaction alerts to tax
property    MA/GOV/MEF/STATE-PROPERTY        answers parcel lookups
=========== ================================ =============================================

Each agency's module (:mod:`~connectors.ministries.civil`, ``tax``, ``customs``,
``treasury``, ``state_property``) holds its handlers, its sample-data registries and, for
publishers, generators of sample events. The sample data is small and fictitious.
"""

from __future__ import annotations

from connectors.ministries import civil, customs, state_property, tax, treasury
from connectors.ministries._spec import AgencySpec

__all__ = ["AGENCIES", "AgencySpec", "civil", "customs", "state_property", "tax", "treasury"]

AGENCIES: dict[str, AgencySpec] = {
    "civil": civil.SPEC,
    "tax": tax.SPEC,
    "customs": customs.SPEC,
    "treasury": treasury.SPEC,
    "property": state_property.SPEC,
}
