"""Open data: Frictionless validation of resources and publishing to CKAN.

:func:`validate_resource` checks a CSV file against its Table Schema and returns a
:class:`DataReport`. :func:`package_dict` maps a dataset to a CKAN package in pure code.
:class:`Publisher` publishes (idempotently, versioned by SHA-256) and withdraws (purges);
portal failures raise the :class:`OpenDataError` tree, each class with a stable ``code``.
"""

from opendata._errors import (
    InvalidData,
    NotPublished,
    OpenDataError,
    PortalError,
    PortalRefused,
    PortalRejected,
    PortalUnavailable,
)
from opendata._mapping import ResourceInfo, ckan_name, organization_dict, package_dict
from opendata._publisher import Publisher, PublishResult, WithdrawResult
from opendata._validate import DataError, DataReport, validate_resource

__all__ = [
    "DataError",
    "DataReport",
    "InvalidData",
    "NotPublished",
    "OpenDataError",
    "PortalError",
    "PortalRefused",
    "PortalRejected",
    "PortalUnavailable",
    "PublishResult",
    "Publisher",
    "ResourceInfo",
    "WithdrawResult",
    "ckan_name",
    "organization_dict",
    "package_dict",
    "validate_resource",
]
