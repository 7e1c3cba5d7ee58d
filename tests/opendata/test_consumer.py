"""The consumer's side against the real CKAN: search finds what was published; pull checks
the signed release with the CA certificate alone, then every file's size and SHA-256 and the
data against the published schema; whoever controls the portal cannot make it accept other
bytes (a file changed, even with the portal's SHA-256s patched to match; the release removed,
changed or re-signed under another CA), and nothing is kept as valid when it refuses; the
DCAT-AP catalogue is valid JSON-LD that rdflib reads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from rdflib import Graph, Namespace
from rdflib.namespace import DCAT, DCTERMS, RDF

from exchange import CertificateAuthority, SubsystemId
from governance import AuditSigner, ReleaseFile, new_release, sign_release
from opendata import Consumer, NotPublished, dcat_dataset
from tests.opendata.conftest import csv_file
from tests.opendata.test_publisher import STORAGE
from tests.support.ckan import CA_CERTIFICATE, URL

SPDX = Namespace("http://spdx.org/rdf/terms#")
SCHEMA = {
    "fields": [
        {"name": "station", "type": "string", "constraints": {"required": True}},
        {"name": "ph", "type": "number"},
    ]
}


@pytest.fixture
def published(publisher, dataset, tmp_path):
    path = csv_file(tmp_path, "station,ph\nA,7.1\nB,6.9\n")
    return publisher.publish(dataset, path, SCHEMA, "review-1"), path


def test_search_finds_published_datasets(published, dataset):
    result, _ = published
    count, listings = Consumer(URL).search(f'name:"{result.name}"')
    assert count == 1
    assert listings[0].as_dict() == {
        "name": result.name,
        "dataset_id": dataset["dataset_id"],
        "title": dataset["title"]["fr"],
        "agency": dataset["owner_agency"],
        "version": 1,
        "url": f"{URL}/dataset/{result.name}",
    }


def test_search_folds_accents_and_stems_on_the_local_portal(published, dataset):
    """Through CKAN to the local Solr stand-in: the title says "Qualité de l'eau", a search
    for "qualite" (no accent) and one for "qualités" (a plural) find it."""
    result, _ = published
    tag = dataset["title"]["fr"].rsplit(" ", 1)[-1]
    for query in (f"qualite {tag}", f"QUALITÉS {tag}"):
        count, listings = Consumer(URL).search(query)
        assert [item.name for item in listings] == [result.name], query
        assert count == 1


def test_pull_verifies_every_file_and_validates(published, dataset, tmp_path):
    _, path = published
    seen: list[int] = []
    report = Consumer(URL).pull(
        dataset["dataset_id"], tmp_path / "out", ca_certificate=CA_CERTIFICATE, progress=seen.append
    )
    assert report.ok, report.problems
    assert (report.version, report.validation.rows) == (1, 2)
    assert sorted(f.name for f in report.files) == ["data.csv", "datapackage.json", "schema.json"]
    assert all(f.verified for f in report.files)
    assert (tmp_path / "out" / "data.csv").read_bytes() == path.read_bytes()
    release = report.release
    assert release is not None
    assert release.signer == "MA/GOV/DNUM/REGISTRY"
    assert (release.release.version, release.release.approval) == (1, "review-1")
    assert json.loads((tmp_path / "out" / "release.json").read_bytes())["release"]["version"] == 1
    release_size = (tmp_path / "out" / "release.json").stat().st_size
    assert sum(seen) == sum(f.size for f in report.files) + release_size


def _stored(package: dict, name: str) -> Path:
    resource = next(r for r in package["resources"] if r["name"] == name)
    return STORAGE / resource["id"][:3] / resource["id"][3:6] / resource["id"][6:]


def _refused(report, code: str, out: Path) -> None:
    """Refused with ``code``: nothing under its own name, every download kept as rejected."""
    assert not report.ok
    assert report.code == code, report.problems
    assert report.as_dict()["ok"] is False
    kept = sorted(p.name for p in out.iterdir())
    assert all(name.endswith(".rejected") for name in kept), kept


def test_a_file_changed_on_the_portal_is_caught(published, ckan, dataset, tmp_path):
    """Someone edits the stored CSV behind CKAN's back: refused, release-mismatch, nothing
    kept as valid."""
    result, _ = published
    stored = _stored(ckan.action.package_show(id=result.name), "data.csv")
    stored.write_bytes(b"station,ph\nA,7.1\nB,9.9\n")
    out = tmp_path / "out"
    report = Consumer(URL).pull(dataset["dataset_id"], out, ca_certificate=CA_CERTIFICATE)
    _refused(report, "release-mismatch", out)
    assert "not the" in report.problems[0]
    assert (out / "data.csv.rejected").read_bytes() == stored.read_bytes()


def test_a_file_larger_than_its_release_is_not_downloaded_whole(published, ckan, dataset, tmp_path):
    """A portal serving 8 MiB more than the release names: the download stops just past the
    release's size, and the pull is refused."""
    result, path = published
    stored = _stored(ckan.action.package_show(id=result.name), "data.csv")
    stored.write_bytes(path.read_bytes() + b"x" * (8 << 20))
    out = tmp_path / "out"
    report = Consumer(URL).pull(dataset["dataset_id"], out, ca_certificate=CA_CERTIFICATE)
    _refused(report, "release-mismatch", out)
    assert (out / "data.csv.rejected").stat().st_size < (2 << 20)


def test_a_portal_that_patches_its_own_sha256s_is_still_caught(published, ckan, dataset, tmp_path):
    """The portal's administrator replaces the CSV with a row of 5,000,000 MAD and patches
    the SHA-256 in the resource and the package extras to match: the signed release still
    says otherwise."""
    result, _ = published
    package = ckan.action.package_show(id=result.name)
    forged = b"station,ph\nA,5000000\nB,6.9\n"
    _stored(package, "data.csv").write_bytes(forged)
    digest = hashlib.sha256(forged).hexdigest()
    data = next(r for r in package["resources"] if r["name"] == "data.csv")
    ckan.action.resource_patch(id=data["id"], sha256=digest)
    extras = [
        {**e, "value": digest} if e["key"] == "sha256:data.csv" else e for e in package["extras"]
    ]
    ckan.action.package_patch(id=package["id"], extras=extras)
    out = tmp_path / "out"
    report = Consumer(URL).pull(dataset["dataset_id"], out, ca_certificate=CA_CERTIFICATE)
    _refused(report, "release-mismatch", out)
    assert any("portal's SHA-256 is not the signed release's" in p for p in report.problems)
    assert not (out / "data.csv").exists()


@pytest.mark.parametrize("attack", ["remove", "edit", "resign", "huge"])
def test_the_release_itself_cannot_be_taken_away_changed_or_replaced(
    published, ckan, dataset, tmp_path, attack
):
    """Without release.json the pull is release-unsigned; with its version changed,
    release-forged; re-signed with a key of another CA, release-untrusted."""
    result, _ = published
    package = ckan.action.package_show(id=result.name)
    release = next(r for r in package["resources"] if r["name"] == "release.json")
    stored = _stored(package, "release.json")
    document = json.loads(stored.read_bytes())
    if attack == "remove":
        ckan.action.resource_delete(id=release["id"])
        expected = "release-unsigned"
    elif attack == "huge":  # a portal serving an endless release
        stored.write_bytes(b" " * (2 << 20))
        expected = "release-invalid"
    elif attack == "edit":
        document["release"]["approvers"] = ["nobody"]
        stored.write_bytes(json.dumps(document).encode())
        expected = "release-forged"
    else:
        other = CertificateAuthority.create("MA")
        key = ed25519.Ed25519PrivateKey.generate()
        registry = SubsystemId.parse("MA/GOV/DNUM/REGISTRY")
        signer = AuditSigner(registry, key, other.issue(registry, key.public_key()))
        fields = document["release"]
        fake = new_release(
            dataset_id=fields["dataset_id"],
            package=fields["package"],
            version=fields["version"],
            files=[ReleaseFile(**f) for f in fields["files"]],
            schema_sha256=fields["schema_sha256"],
            approval=fields["approval"],
            approvers=fields["approvers"],
        )
        stored.write_bytes(sign_release(fake, signer))
        expected = "release-untrusted"
    out = tmp_path / "out"
    report = Consumer(URL).pull(dataset["dataset_id"], out, ca_certificate=CA_CERTIFICATE)
    _refused(report, expected, out)
    assert report.files == ()


def test_pulling_an_unpublished_dataset_is_a_clear_error(ckan, tmp_path):
    with pytest.raises(NotPublished) as caught:
        Consumer(URL).pull("no-such-dataset-here", tmp_path, ca_certificate=CA_CERTIFICATE)
    assert caught.value.code == "not-published"
    assert "no-such-dataset-here" in caught.value.message


# rdflib's own JSON-LD parser still builds a ConjunctiveGraph internally
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")
def test_dcat_catalogue_is_json_ld_with_checksums(published, dataset):
    result, _ = published
    catalog = Consumer(URL).catalog()
    graph = Graph().parse(data=json.dumps(catalog), format="json-ld")
    node = next(
        s
        for s in graph.subjects(RDF.type, DCAT.Dataset)
        if str(s).endswith(f"/dataset/{result.name}")
    )
    titles = {(str(t), t.language) for t in graph.objects(node, DCTERMS.title)}
    assert (dataset["title"]["ar"], "ar") in titles
    assert (dataset["title"]["fr"], "fr") in titles
    sums = {
        str(graph.value(graph.value(dist, SPDX.checksum), SPDX.checksumValue))
        for dist in graph.objects(node, DCAT.distribution)
    }
    assert result.sha256 in sums
    assert len(sums) == 4  # data, schema, datapackage, release


def test_dcat_mapping_lists_only_the_current_version():
    package = {
        "name": "ds",
        "version": "2",
        "title": "T",
        "resources": [
            {"name": "data.csv", "url": "http://p/1", "format": "CSV", "tabadul_version": "1"},
            {"name": "data.csv", "url": "http://p/2", "format": "CSV", "tabadul_version": "2"},
        ],
        "extras": [{"key": "sha256:data.csv", "value": "ab" * 32}],
    }
    node = dcat_dataset(package, portal_url="http://p")
    assert [d["@id"] for d in node["dcat:distribution"]] == ["http://p/2"]
    assert node["dcat:distribution"][0]["dcat:mediaType"] == "text/csv"
    assert node["owl:versionInfo"] == "2"
