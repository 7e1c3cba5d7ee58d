"""Dataset tags through the API: a tag CKAN would refuse is refused at registration with the
governance code naming the tag and the rule (422), before anything is stored."""

from __future__ import annotations

import pytest

from tests.api.conftest import dataset_body, is_problem


@pytest.mark.parametrize(
    ("tag", "rule"),
    [
        ("a/b", "characters"),
        ("x" * 150, "length"),
        ("<script>", "characters"),
        ("ab\u202ecd", "invisible"),
    ],
)
def test_registering_a_tag_ckan_refuses_is_a_422_naming_the_rule(api, tag, rule):
    body = is_problem(
        api("amina").post("/datasets", json=dataset_body("tariffs", tags=["customs", tag])),
        422,
        "invalid-tag",
    )
    assert (body["rule"], body["index"]) == (rule, 1)
    assert api("amina").get("/datasets").json() == []
