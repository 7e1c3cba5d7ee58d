"""The one module that calls CKAN, through ckanapi (STYLE rule 7: a thin call).

Every ckanapi or transport error is re-raised as a :class:`opendata.PortalError` subclass;
nothing of ckanapi leaks out of this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, cast

# ckanapi ships no type information (no py.typed, no stubs package): hence the ignore.
import ckanapi  # type: ignore[import-untyped]
import httpx

from opendata._errors import NotPublished, PortalRefused, PortalRejected, PortalUnavailable

USER_AGENT = "tabadul-opendata"
DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16


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
    except (OSError, httpx.TransportError) as exc:  # requests' errors are OSErrors
        raise PortalUnavailable(f"{action}: the portal is unreachable: {exc}") from exc


class CkanClient:
    """CKAN's action API, reduced to what publishing and pulling need. Without a ``token``
    it acts as the public does. Close it (or use ``with``)."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._remote = ckanapi.RemoteCKAN(url, apikey=token or None, user_agent=USER_AGENT)
        self._token = token
        self._timeout = timeout

    def close(self) -> None:
        self._remote.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, action: str, **data: Any) -> Any:
        with _translated(action):
            return self._remote.call_action(
                action, data, requests_kwargs={"timeout": self._timeout}
            )

    def account(self) -> str:
        """The user id of the account the token belongs to."""
        return str(self._call("user_show")["id"])

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
        self, *, package_id: str, path: Path, fields: Mapping[str, str], stored_as: str = ""
    ) -> dict[str, Any]:
        """Upload ``path`` as a new resource of the package, with ``fields`` (name, format...),
        the portal storing it as ``stored_as`` (its URL's last part; the name by default)."""
        with _translated("resource_create"), path.open("rb") as stream:
            result = self._remote.call_action(
                "resource_create",
                {"package_id": package_id, **fields},
                files={"upload": (stored_as or fields["name"], stream)},
                requests_kwargs={"timeout": self._timeout},
            )
        return cast("dict[str, Any]", result)

    def delete_upload(self, resource_id: str) -> None:
        """Remove the uploaded file of a resource from the portal's storage, then the
        resource (CKAN deletes the file only when told to clear the upload)."""
        self.clear_upload(resource_id)
        self._call("resource_delete", id=resource_id)

    def clear_upload(self, resource_id: str) -> None:
        """Remove the uploaded file of a resource from the portal's storage."""
        self._call("resource_patch", id=resource_id, url="", clear_upload=True)

    def purge_package(self, name: str) -> None:
        """Delete the package for good (dataset_purge): it leaves search and package_show."""
        self._call("dataset_purge", id=name)

    def search(self, query: str, *, rows: int = 20, start: int = 0, fq: str = "") -> dict[str, Any]:
        """package_search: ``count`` and ``results`` (package dicts)."""
        return cast(
            "dict[str, Any]",
            self._call("package_search", q=query or "*:*", rows=rows, start=start, fq=fq),
        )

    def download(
        self,
        url: str,
        target: Path,
        progress: Callable[[int], None] | None = None,
        *,
        at_most: int | None = None,
    ) -> int:
        """Stream ``url`` to ``target``; returns the byte count. With ``at_most``, it stops
        once more bytes than that came (the count then says so): a portal cannot fill the
        disk with a file larger than it should be. HTTP errors raise
        :class:`NotPublished` (404) or :class:`PortalUnavailable`."""
        headers = {"User-Agent": USER_AGENT}
        if self._token:
            headers["Authorization"] = self._token
        done = 0
        with (
            _translated(f"download {url}"),
            httpx.stream("GET", url, headers=headers, timeout=self._timeout) as response,
        ):
            if response.status_code == 404:
                raise NotPublished(f"{url} is not served by the portal (404)")
            if response.status_code >= 400:
                raise PortalUnavailable(f"{url}: the portal answered {response.status_code}")
            with target.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
                    if at_most is not None and done > at_most:
                        break
        return done


__all__ = ["CkanClient"]
