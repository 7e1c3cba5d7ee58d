"""The consumer's side against the real CKAN: search finds what was published, pull
verifies every SHA-256 and validates the data against the published schema, a file changed
on the portal is caught, and the DCAT-AP catalogue is valid JSON-LD that rdflib reads."""

from __future__ import annotations

import json

import pytest
from rdflib import Graph, Namespace
from rdflib.namespace import DCAT, DCTERMS, RDF

from opendata import Consumer, NotPublished, dcat_dataset
from tests.opendata.conftest import csv_file
from tests.opendata.test_publisher import STORAGE
from tests.support.ckan import URL

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


def test_pull_verifies_every_file_and_validates(published, dataset, tmp_path):
    _, path = published
    seen: list[int] = []
    report = Consumer(URL).pull(dataset["dataset_id"], tmp_path / "out", progress=seen.append)
    assert report.ok, report.problems
    assert (report.version, report.validation.rows) == (1, 2)
    assert sorted(f.name for f in report.files) == ["data.csv", "datapackage.json", "schema.json"]
    assert all(f.verified for f in report.files)
    assert (tmp_path / "out" / "data.csv").read_bytes() == path.read_bytes()
    assert sum(seen) == sum(f.size for f in report.files)


def test_a_file_changed_on_the_portal_is_caught(published, ckan, dataset, tmp_path):
    """Someone edits the stored CSV behind CKAN's back: pull reports the mismatch, keeps the
    download as data.csv.rejected and never writes data.csv."""
    result, _ = published
    package = ckan.action.package_show(id=result.name)
    data = next(r for r in package["resources"] if r["name"] == "data.csv")
    stored = STORAGE / data["id"][:3] / data["id"][3:6] / data["id"][6:]
    stored.write_bytes(b"station,ph\nA,7.1\nB,9.9\n")

    report = Consumer(URL).pull(dataset["dataset_id"], tmp_path / "out")
    assert not report.ok
    assert report.problems[0].startswith("data.csv: SHA-256 ")
    assert "not what was published" in report.problems[0]
    assert not (tmp_path / "out" / "data.csv").exists()
    assert (tmp_path / "out" / "data.csv.rejected").read_bytes() == stored.read_bytes()
    assert report.as_dict()["ok"] is False


def test_pulling_an_unpublished_dataset_is_a_clear_error(ckan, tmp_path):
    with pytest.raises(NotPublished) as caught:
        Consumer(URL).pull("no-such-dataset-here", tmp_path)
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
    assert len(sums) == 3


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
