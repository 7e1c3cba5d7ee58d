"""A model trained once on the shipped sample, for the risk tests."""

from __future__ import annotations

import pandas as pd
import pytest

from risk import SAMPLE, Layout, Model, ModelStore, Stored, infer_layout, read_tables, train

KCS = {
    "id_column": "Declaration ID",
    "label": "Fraud",
    "time": "Date",
    "exclude": ["Critical Fraud"],
}


@pytest.fixture(scope="session")
def sample() -> pd.DataFrame:
    return read_tables([SAMPLE]).frame


@pytest.fixture(scope="session")
def layout(sample: pd.DataFrame) -> Layout:
    return infer_layout(sample, **KCS)


@pytest.fixture(scope="session")
def model(sample: pd.DataFrame, layout: Layout) -> Model:
    return train(sample, layout)


@pytest.fixture
def stored(tmp_path, model: Model) -> Stored:
    return ModelStore(tmp_path / "model").save(model, training={"sha256": "test"})
