"""The model store: a folder of versioned models, each checked against its digests on load.

::

    DIR/CURRENT                  the version in use ("0003")
    DIR/versions/0003/model.txt  the LightGBM model, in LightGBM's own text format
    DIR/versions/0003/state.json the layout, the history, the lanes, the feature labels
    DIR/versions/0003/manifest.json
                                 the SHA-256 of model.txt and state.json, the SHA-256 and
                                 row counts of the training files, the parameters, the
                                 validation figures, the library versions

Nothing is pickled. Loading recomputes both digests and refuses (``model-tampered``) a file
that does not match its manifest. The manifest's own SHA-256 is the model's **digest**
(``sha256:...``): what an assessment names, and what an operator pins to notice a manifest
rewritten along with the files.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

import lightgbm as lgb

from risk._errors import ModelMissing, ModelTampered, ModelUnwritable
from risk._features import History, Layout
from risk._model import Lanes, Metrics, Model

FORMAT = "tabadul-risk-model/1"
_LIBRARIES = ("lightgbm", "numpy", "pandas", "scikit-learn", "skops")
_T = TypeVar("_T")
_M = TypeVar("_M")
_K = TypeVar("_K", bound="Kept[Any]")


@dataclass(frozen=True)  # no slots: with Generic, Python 3.11's slotted copy breaks super()
class Kept(Generic[_M]):
    """A model as the store holds it: its version, digest and manifest."""

    model: _M
    version: str
    digest: str
    manifest: dict[str, Any]


Stored = Kept[Model]
"""A declaration model as the store holds it."""


class VersionedStore:
    """A folder of versions, each checked against its manifest; the CURRENT file names the
    one in use. Subclasses name their format and files, and how a model is written and
    read (:class:`ModelStore`, :class:`~risk._payments.PaymentModelStore`)."""

    FORMAT: str
    FILES: tuple[str, ...]

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def versions(self) -> list[str]:
        """The versions stored, oldest first (none when the folder cannot be read)."""
        try:
            found = [p.name for p in (self.folder / "versions").iterdir() if p.name.isdigit()]
        except OSError:
            return []
        return sorted(found, key=int)

    def current(self) -> str:
        """The version in use. Raises :class:`ModelMissing` for a folder with no model."""
        try:
            version = (self.folder / "CURRENT").read_text("ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelMissing(f"{self.folder} holds no model (no CURRENT file)") from exc
        if version not in self.versions():
            raise ModelMissing(f"{self.folder}: the current version {version!r} is missing")
        return version

    def stamp(self) -> tuple[int, int, int] | None:
        """What tells a replaced CURRENT file from the one last read: one ``stat`` (it is
        written atomically, so a new version is a new inode); ``None`` without one."""
        try:
            found = (self.folder / "CURRENT").stat()
        except OSError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def _save(self, write: Callable[[Path, str], _T]) -> _T:
        """Run ``write(folder, version)`` for the next version, then make it current."""
        versions = self.versions()
        version = f"{int(versions[-1]) + 1 if versions else 1:04d}"
        folder = self.folder / "versions" / version
        try:
            folder.mkdir(parents=True)
            written = write(folder, version)
            _write(self.folder / "CURRENT", (version + "\n").encode("ascii"))
        except OSError as exc:
            if folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
            raise ModelUnwritable(
                f"cannot write a model in {self.folder}: {exc.strerror or exc}"
            ) from exc
        return written

    def _checked(self, version: str | None) -> Checked:
        """The files of ``version`` (the current one by default), each checked against the
        SHA-256 its manifest records."""
        if version is None:
            version = self.current()
        elif version not in self.versions():
            raise ModelMissing(f"{self.folder} has no version {version!r}")
        folder = self.folder / "versions" / version
        try:
            manifest_bytes = (folder / "manifest.json").read_bytes()
            manifest = json.loads(manifest_bytes)
            files = manifest["files"]
            if not isinstance(files, dict) or manifest.get("format") != self.FORMAT:
                raise ModelTampered(f"{folder}: not a {self.FORMAT} manifest")
        except OSError as exc:
            raise ModelMissing(f"{folder} has no manifest.json") from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelTampered(f"{folder}/manifest.json does not parse as a manifest") from exc
        contents = {}
        for name in self.FILES:
            try:
                data = (folder / name).read_bytes()
            except OSError as exc:
                raise ModelTampered(f"{folder}/{name} is missing") from exc
            if hashlib.sha256(data).hexdigest() != files.get(name):
                raise ModelTampered(
                    f"{folder}/{name} is not the file its manifest records (SHA-256 differs)",
                    file=name,
                    version=version,
                )
            contents[name] = data
        return Checked(folder, version, _digest(manifest_bytes), manifest, contents)


class ModelStore(VersionedStore):
    """The versioned LightGBM models of one folder (created on first save)."""

    FORMAT = FORMAT
    FILES = ("model.txt", "state.json")

    def save(self, model: Model, *, training: dict[str, Any]) -> Stored:
        """Write ``model`` as the next version and make it current; ``training`` describes
        its data (files with their SHA-256 and rows). Raises :class:`ModelUnwritable` when
        the folder cannot be written (nothing of the version is left then)."""
        return self._save(lambda folder, version: _write_version(folder, version, model, training))

    def load(self, version: str | None = None) -> Stored:
        """The model ``version`` (the current one by default), its files checked. Raises
        :class:`ModelMissing` or :class:`ModelTampered`."""
        checked = self._checked(version)
        try:
            state = json.loads(checked.files["state.json"])
            booster = lgb.Booster(model_str=checked.files["model.txt"].decode("utf-8"))
            model = _model(state, booster, checked.manifest)
        except (ValueError, KeyError, TypeError, AttributeError, lgb.basic.LightGBMError) as exc:
            raise ModelTampered(f"{checked.folder}: the model does not load: {exc}") from exc
        return Stored(model, checked.version, checked.digest, checked.manifest)


@dataclass(frozen=True, slots=True)
class Checked:
    """One version's files as read, each matching its manifest."""

    folder: Path
    version: str
    digest: str
    manifest: dict[str, Any]
    files: dict[str, bytes]


class Current(Generic[_K]):
    """The version in use of ``store``, as ``load()`` reads it, loaded again only when the
    CURRENT file was replaced (by this process or another): one ``stat`` per call, the
    folder read only on a change. Thread-safe."""

    def __init__(self, store: VersionedStore, load: Callable[[], _K]) -> None:
        self._store = store
        self._load = load
        self._lock = threading.Lock()
        self._seen = store.stamp()
        self._kept = load()

    def get(self) -> _K:
        with self._lock:
            seen = self._store.stamp()
            if seen == self._seen:
                return self._kept
            try:
                version = self._store.current()
            except ModelMissing:
                return self._kept  # the folder is being rewritten: keep what works
            if version != self._kept.version:
                self._kept = self._load()
            self._seen = seen
            return self._kept


def write_manifest(
    folder: Path, fmt: str, version: str, files: dict[str, bytes], **fields: Any
) -> tuple[dict[str, Any], str]:
    """Write ``files`` and the manifest naming their SHA-256 (plus ``fields`` and the
    library versions) into ``folder``; the manifest and the version's digest."""
    manifest = {
        "format": fmt,
        "version": version,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        **fields,
        "libraries": {
            "python": platform.python_version(),
            **{name: metadata.version(name) for name in _LIBRARIES},
        },
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    for name, data in (*files.items(), ("manifest.json", manifest_bytes)):
        _write(folder / name, data)
    return manifest, _digest(manifest_bytes)


def _write_version(folder: Path, version: str, model: Model, training: dict[str, Any]) -> Stored:
    """Write the three files of one version into ``folder``."""
    manifest, digest = write_manifest(
        folder,
        FORMAT,
        version,
        {
            "model.txt": model.booster.model_to_string().encode("utf-8"),
            "state.json": json.dumps(_state(model), ensure_ascii=False, sort_keys=True).encode(),
        },
        training=training,
        params=model.params,
        metrics=model.metrics.as_dict(),
        features=list(model.features),
    )
    return Stored(model, version, digest, manifest)


def _digest(manifest: bytes) -> str:
    """A model's digest: the SHA-256 of its manifest's bytes."""
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def _state(model: Model) -> dict[str, Any]:
    return {
        "layout": model.layout.as_dict(),
        "history": model.history.as_dict(),
        "features": list(model.features),
        "kinds": model.kinds,
        "labels": model.labels,
        "lanes": {
            "budget": model.lanes.budget,
            "review": model.lanes.review,
            "red": model.lanes.red,
            "yellow": model.lanes.yellow,
        },
    }


def _model(state: dict[str, Any], booster: lgb.Booster, manifest: dict[str, Any]) -> Model:
    features = tuple(state["features"])
    if booster.feature_name() != [f"f{i}" for i in range(len(features))]:
        raise ValueError("the model's features are not the state's")
    return Model(
        layout=Layout.from_dict(state["layout"]),
        history=History.from_dict(state["history"]),
        booster=booster,
        features=features,
        kinds=dict(state["kinds"]),
        labels={k: dict(v) for k, v in state["labels"].items()},
        lanes=Lanes(**state["lanes"]),
        metrics=Metrics.from_dict(manifest["metrics"]),
        params=dict(manifest["params"]),
    )


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a reader sees the old file or the new, never half of one."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


__all__ = ["Checked", "Current", "Kept", "ModelStore", "Stored", "VersionedStore", "write_manifest"]
