"""Open data: Frictionless validation of resources and publishing to CKAN.

:func:`validate_resource` checks a CSV file against its Table Schema and returns a
:class:`DataReport`. :func:`package_dict` maps a dataset to a CKAN package in pure code.
:class:`Publisher` publishes (idempotently, versioned by SHA-256) and withdraws (purges);
portal failures raise the :class:`OpenDataError` tree, each class with a stable ``code``.
"""

from opendata._consumer import Consumer, Listing, PulledFile, PullReport
from opendata._dcat import dcat_catalog, dcat_dataset
from opendata._errors import (
    InvalidData,
    InvalidSchema,
    MissingFile,
    NoReleaseKey,
    NotPublished,
    OpenDataError,
    PackageNotOurs,
    PortalError,
    PortalRefused,
    PortalRejected,
    PortalUnavailable,
    PublishInterrupted,
    UnknownVersion,
)
from opendata._hashing import file_sha256
from opendata._mapping import ResourceInfo, ckan_name, organization_dict, package_dict
from opendata._pipeline import DataFiles, OpenData, Submission, dataset_fields
from opendata._publisher import Publisher, PublishResult, RetryPolicy, WithdrawResult
from opendata._validate import DataError, DataReport, validate_resource

__all__ = [
    "Consumer",
    "DataError",
    "DataFiles",
    "DataReport",
    "InvalidData",
    "InvalidSchema",
    "Listing",
    "MissingFile",
    "NoReleaseKey",
    "NotPublished",
    "OpenData",
    "OpenDataError",
    "PackageNotOurs",
    "PortalError",
    "PortalRefused",
    "PortalRejected",
    "PortalUnavailable",
    "PublishInterrupted",
    "PublishResult",
    "Publisher",
    "PullReport",
    "PulledFile",
    "ResourceInfo",
    "RetryPolicy",
    "Submission",
    "UnknownVersion",
    "WithdrawResult",
    "ckan_name",
    "dataset_fields",
    "dcat_catalog",
    "dcat_dataset",
    "file_sha256",
    "organization_dict",
    "package_dict",
    "validate_resource",
]
