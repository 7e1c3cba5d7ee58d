"""The one module that calls CKAN, through ckanapi (STYLE rule 7: a thin call).

Every ckanapi or transport error is re-raised as a :class:`opendata.PortalError` subclass;
nothing of ckanapi leaks out of this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, cast

# ckanapi ships no type information (no py.typed, no stubs package): hence the ignore.
import ckanapi  # type: ignore[import-untyped]

from opendata._errors import NotPublished, PortalRefused, PortalRejected, PortalUnavailable

USER_AGENT = "tabadul-opendata"


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Re-raise ckanapi's errors (and transport failures) as the OpenDataError tree."""
    try:
        yield
    except ckanapi.NotFound as exc:
        raise NotPublished(f"{action}: not found on the portal") from exc
    except ckanapi.NotAuthorized as exc:
        raise PortalRefused(f"{action}: the portal refused the token") from exc
    except ckanapi.ValidationError as exc:
        details = exc.error_dict if hasattr(exc, "error_dict") else exc.args
        raise PortalRejected(f"{action}: the portal rejected the data: {details}", details) from exc
    except ckanapi.CKANAPIError as exc:
        raise PortalUnavailable(f"{action}: the portal failed: {exc}") from exc
    except OSError as exc:  # requests' ConnectionError and timeouts are OSErrors
        raise PortalUnavailable(f"{action}: the portal is unreachable: {exc}") from exc


class CkanClient:
    """CKAN's action API, reduced to what publishing needs. Close it (or use ``with``)."""

    def __init__(self, url: str, token: str) -> None:
        self._remote = ckanapi.RemoteCKAN(url, apikey=token, user_agent=USER_AGENT)

    def close(self) -> None:
        self._remote.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, action: str, **data: Any) -> Any:
        with _translated(action):
            return self._remote.call_action(action, data)

    def _upload(self, action: str, path: Path, filename: str, **data: Any) -> dict[str, Any]:
        with _translated(action), path.open("rb") as stream:
            result = self._remote.call_action(action, data, files={"upload": (filename, stream)})
        return cast("dict[str, Any]", result)

    def package(self, name: str) -> dict[str, Any] | None:
        """The package named ``name``, or None when the portal has none."""
        try:
            return cast("dict[str, Any]", self._call("package_show", id=name))
        except NotPublished:
            return None

    def ensure_organization(self, organization: Mapping[str, Any]) -> dict[str, Any]:
        """The organisation named ``organization["name"]``, created when missing."""
        try:
            return cast("dict[str, Any]", self._call("organization_show", id=organization["name"]))
        except NotPublished:
            return cast("dict[str, Any]", self._call("organization_create", **organization))

    def create_package(self, package: Mapping[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", self._call("package_create", **package))

    def patch_package(self, package_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the given fields only (resources are kept)."""
        return cast("dict[str, Any]", self._call("package_patch", id=package_id, **changes))

    def upload_resource(
        self,
        *,
        package_id: str,
        path: Path,
        fields: Mapping[str, str],
        resource_id: str | None = None,
    ) -> dict[str, Any]:
        """Upload ``path`` as a new resource, or as the new bytes of ``resource_id``."""
        if resource_id is None:
            return self._upload(
                "resource_create", path, fields["name"], package_id=package_id, **fields
            )
        return self._upload("resource_update", path, fields["name"], id=resource_id, **fields)

    def purge_package(self, name: str) -> None:
        """Delete the package for good (dataset_purge): it leaves search and package_show."""
        self._call("dataset_purge", id=name)


__all__ = ["CkanClient"]
