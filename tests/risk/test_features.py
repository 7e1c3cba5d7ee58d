"""What the columns are taken for, and features that never look ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from risk import BadLabel, BadOption, MissingColumn, NotANumber, infer_layout
from risk._features import labels_of, scoring_features, time_order, training_features


def test_the_declaration_columns_are_read_as_a_customs_engine_would(layout):
    """Codes that look like numbers stay codes; the many-valued ones are identifiers whose
    history (not their value) is a feature; value, quantity, product and origin are found."""
    assert layout.numeric == ("Tax Rate", "Net Mass", "Item Price")
    assert {"Office ID", "Import Type", "Mode of Transport", "Tax Type"} <= set(layout.categorical)
    assert {"Importer ID", "Declarant ID", "Seller ID", "HS6 Code"} <= set(layout.identifiers)
    assert (layout.value, layout.quantity, layout.product, layout.origin) == (
        "Item Price",
        "Net Mass",
        "HS6 Code",
        "Country of Origin",
    )
    assert "Critical Fraud" not in layout.inputs
    assert "Fraud" not in layout.inputs


def test_numbers_with_a_leading_zero_or_a_code_name_are_codes():
    frame = pd.DataFrame(
        {
            "ref": ["1", "2", "3", "4"],
            "zone": ["01", "02", "10", "11"],
            "Office ID": ["10", "20", "30", "40"],
            "amount": ["1.5", "2", "", "7e3"],
            "y": ["0", "1", "0", "1"],
        }
    )
    layout = infer_layout(frame, id_column="ref", label="y")
    assert layout.numeric == ("amount",)
    assert set(layout.categorical) == {"zone", "Office ID"}
    forced = infer_layout(frame, id_column="ref", label="y", categorical=["amount"])
    assert forced.numeric == ()


def test_named_columns_must_exist_and_have_one_role_each(sample):
    with pytest.raises(MissingColumn) as caught:
        infer_layout(sample, id_column="Declaration ID", label="fraud")
    assert caught.value.details["missing"] == ["fraud"]
    with pytest.raises(BadOption):
        infer_layout(sample, id_column="Fraud", label="Fraud")


@pytest.mark.parametrize("cells", [["0", "1", "2"], ["0", "1", "yes"], ["1", "1", "1"]])
def test_a_label_is_two_classes_of_zero_and_one(cells):
    with pytest.raises(BadLabel):
        labels_of(pd.DataFrame({"y": cells}), "y")


def _features(frame, layout):
    ordered, instants = time_order(frame, layout)
    labels = labels_of(ordered, layout.label)
    features, history = training_features(ordered, layout, labels, instants)
    return ordered, features.frame, history


def test_changing_later_labels_leaves_earlier_features_unchanged(sample, layout):
    """Leakage check: flip every label from a date on; no feature of a row before that
    date moves, while later rows' history does."""
    cut = "2020-10-01"
    before, features, _ = _features(sample, layout)
    flipped = sample.copy()
    later = flipped["Date"] >= cut
    flipped.loc[later, "Fraud"] = (1 - flipped.loc[later, "Fraud"].astype(int)).astype(str)
    after, changed, _ = _features(flipped, layout)
    assert before["Declaration ID"].tolist() == after["Declaration ID"].tolist()
    early = (before["Date"] < cut).to_numpy()
    pd.testing.assert_frame_equal(features[early], changed[early])
    rates = [c for c in features.columns if c.endswith("past fraud rate")]
    late = ~early & (before["Date"] > "2020-10-05").to_numpy()
    assert not np.allclose(features.loc[late, rates], changed.loc[late, rates])


def test_rows_of_the_same_instant_do_not_see_each_other():
    frame = pd.DataFrame(
        {
            "ref": ["a", "b", "c", "d"],
            "day": ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03"],
            "who": ["x", "x", "x", "x"],
            "y": ["1", "1", "0", "0"],
        }
    )
    layout = infer_layout(frame, id_column="ref", label="y", time="day")
    layout = layout.__class__(**{**layout.as_dict(), "categorical": (), "identifiers": ("who",)})
    _, features, history = _features(frame, layout)
    rate = features["who: past fraud rate"].to_numpy()
    assert rate[1] == rate[2]  # b and c share a day: neither sees the other's label
    assert rate[0] < rate[1]  # a saw nothing; b and c saw a's fraud
    assert history.identifiers["who"]["x"] == (4, 2)


def test_unseen_identifiers_and_codes_score_as_unknown(model, sample):
    """A declaration from a new importer, with a new country code: the base rate for its
    history, a missing category; it is scored like any other."""
    rows = sample.drop(columns=["Fraud", "Critical Fraud"]).head(3).copy()
    rows["Importer ID"] = ["NEW0001", "NEW0002", "NEW0003"]
    rows["Country of Origin"] = "ZZ"
    features = scoring_features(rows, model.layout, model.history)
    base = model.history.base_rate
    assert features["Importer ID: share of earlier declarations"].tolist() == [0.0] * 3
    assert np.allclose(features["Importer ID: past fraud rate"], base)
    assert np.isnan(features["Country of Origin"]).all()
    assert all(0 <= a["score"] <= 1 for a in model.score(rows))


def test_text_in_a_numeric_column_names_the_column_and_row(model, sample):
    rows = sample.drop(columns=["Fraud"]).head(5).copy()
    rows.loc[3, "Net Mass"] = "heavy"
    with pytest.raises(NotANumber) as caught:
        model.score(rows)
    assert caught.value.details == {"column": "Net Mass", "row": 5}
    assert "heavy" not in caught.value.message
