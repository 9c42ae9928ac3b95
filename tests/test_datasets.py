"""Loading review CSVs and grouped splits, on the real datasets."""

from __future__ import annotations

import pandas as pd
import pytest

from mtl_hybrid.datasets import grouped_train_test_split, load_reviews


def test_load_real_columns(data_home):
    frame = load_reviews(data_home / "multi_domain_sentiment.csv", extra_columns=["asin"])
    assert list(frame.columns) == ["text", "category", "sentiment", "asin"]
    assert set(frame["category"]) == {"books", "dvd", "electronics", "kitchen"}
    assert len(frame) > 7000


def test_missing_column_lists_available(data_home):
    with pytest.raises(ValueError, match=r"no column\(s\) \['department'\]; available columns: \['text', 'category'"):
        load_reviews(data_home / "womens_clothing_reviews.csv", task_columns=["department"])


def test_non_utf8_rejected(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,category\ncaf\xe9 au lait,food\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_reviews(path, task_columns=["category"])


def test_missing_file_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="CSV file not found"):
        load_reviews(tmp_path / "none.csv")


def test_blank_texts_dropped(tmp_path):
    path = tmp_path / "blank.csv"
    pd.DataFrame({"text": ["good", "", None, "  ", "bad"], "category": list("abcde")}).to_csv(path, index=False)
    assert load_reviews(path, task_columns=["category"])["text"].tolist() == ["good", "bad"]
    with pytest.raises(ValueError, match=r"3 row\(s\) with a missing or blank 'text' \(CSV lines \[3, 4, 5\]\)"):
        load_reviews(path, task_columns=["category"], drop_missing_text=False)


def test_grouped_split_keeps_groups_apart(data_home):
    frame = load_reviews(data_home / "womens_clothing_reviews.csv", extra_columns=["clothing_id"])
    train, test = grouped_train_test_split(frame, stratify_columns=["category", "sentiment"], group_column="clothing_id")
    assert not set(train["clothing_id"]) & set(test["clothing_id"])
    assert len(test) / len(frame) == pytest.approx(0.2, abs=0.03)
    assert set(test["category"]) == set(frame["category"])
    assert len(train) + len(test) == len(frame)


def test_grouped_split_keeps_label_mix(data_home):
    frame = load_reviews(data_home / "multi_domain_sentiment.csv", extra_columns=["asin"])
    train, test = grouped_train_test_split(frame, stratify_columns=["category", "sentiment"], group_column="asin")
    shares = test["sentiment"].value_counts(normalize=True)
    overall = frame["sentiment"].value_counts(normalize=True)
    assert (shares - overall).abs().max() < 0.03


def test_split_invalid_test_size(data_home):
    frame = pd.DataFrame({"text": list("abcd"), "category": list("xyxy")})
    with pytest.raises(ValueError, match="test_size must be between 0 and 1"):
        grouped_train_test_split(frame, stratify_columns=["category"], test_size=1.5)


def test_split_too_few_groups():
    frame = pd.DataFrame({"text": list("abcd"), "category": list("xyxy"), "item": [1, 1, 2, 2]})
    with pytest.raises(ValueError, match="has 2 group"):
        grouped_train_test_split(frame, stratify_columns=["category"], group_column="item", test_size=0.2)
