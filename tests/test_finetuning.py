"""MultiTaskFineTuner on a tiny random BERT (for speed) and once on the real MiniLM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sklearn.pipeline import Pipeline

from mtl_hybrid import MultiTaskClassifier, XGBoostHead
from mtl_hybrid.finetuning import MultiTaskFineTuner
from mtl_hybrid.persistence import load_pipeline, save_pipeline

TASKS = ["category", "sentiment"]


def tiny_tuner(tiny_model, **params) -> MultiTaskFineTuner:
    defaults = dict(epochs=2, batch_size=16, max_seq_length=32, head_lr=5e-3, encoder_lr=1e-3, show_progress_bar=False)
    return MultiTaskFineTuner(tiny_model, **{**defaults, **params})


def test_fit_predict_frame(tiny_model, clothing):
    tuner = tiny_tuner(tiny_model).fit(clothing["text"], clothing[TASKS])
    predicted = tuner.predict(clothing["text"].head(10))
    assert list(predicted.columns) == TASKS
    assert set(predicted["sentiment"]) <= {"negative", "neutral", "positive"}
    assert len(tuner.history_) == 2
    assert 1 <= tuner.best_epoch_ <= 2


def test_predict_proba_per_task(tiny_model, clothing):
    tuner = tiny_tuner(tiny_model, epochs=1).fit(clothing["text"], clothing[TASKS])
    category, sentiment = tuner.predict_proba(clothing["text"].head(5))
    assert category.shape == (5, 6)
    assert sentiment.shape == (5, 3)
    np.testing.assert_allclose(sentiment.sum(axis=1), 1.0, rtol=1e-5)


def test_encoder_changes(tiny_model, clothing):
    tuner = tiny_tuner(tiny_model, epochs=1).fit(clothing["text"], clothing[TASKS])
    before = SentenceTransformer(tiny_model, device="cpu").encode(["a lovely dress"])
    after = tuner.transform(["a lovely dress"])
    assert not np.allclose(before, after)


def test_saved_encoder_loads_plainly(tiny_model, clothing):
    tuner = tiny_tuner(tiny_model, epochs=1).fit(clothing["text"], clothing[TASKS])
    texts = clothing["text"].head(6).tolist()
    plain = SentenceTransformer(tuner.encoder_path_, device="cpu").encode(texts)
    np.testing.assert_allclose(tuner.transform(texts), plain, atol=1e-5)


def test_resume_after_interruption(tiny_model, clothing, tmp_path, monkeypatch):
    X, Y = clothing["text"], clothing[TASKS]
    full = tiny_tuner(tiny_model, epochs=3, checkpoint_dir=tmp_path / "full").fit(X, Y)

    real_save = MultiTaskFineTuner._save_checkpoint

    def save_then_interrupt(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(MultiTaskFineTuner, "_save_checkpoint", save_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        tiny_tuner(tiny_model, epochs=3, checkpoint_dir=tmp_path / "cut").fit(X, Y)
    monkeypatch.setattr(MultiTaskFineTuner, "_save_checkpoint", real_save)

    resumed = tiny_tuner(tiny_model, epochs=3, checkpoint_dir=tmp_path / "cut").fit(X, Y)

    assert [record["epoch"] for record in resumed.history_] == [1, 2, 3]
    assert resumed.history_[1]["train_loss"] == pytest.approx(full.history_[1]["train_loss"], rel=1e-4)
    np.testing.assert_allclose(resumed.transform(X.head(4)), full.transform(X.head(4)), atol=1e-5)


def test_checkpoint_of_other_run_rejected(tiny_model, clothing, tmp_path):
    X, Y = clothing["text"], clothing[TASKS]
    tiny_tuner(tiny_model, epochs=1, checkpoint_dir=tmp_path).fit(X, Y)
    with pytest.raises(ValueError, match="checkpoint of another run"):
        tiny_tuner(tiny_model, epochs=1, checkpoint_dir=tmp_path, dropout=0.3).fit(X, Y)


def test_seed_reproducible(tiny_model, clothing):
    X, Y = clothing["text"], clothing[TASKS]
    first = tiny_tuner(tiny_model, epochs=1).fit(X, Y).predict_proba(X.head(8))
    second = tiny_tuner(tiny_model, epochs=1).fit(X, Y).predict_proba(X.head(8))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_missing_labels_masked(tiny_model, clothing):
    Y = clothing[TASKS].copy()
    Y.loc[: len(Y) // 2, "sentiment"] = None
    tuner = tiny_tuner(tiny_model, epochs=1).fit(clothing["text"], Y)
    assert np.isfinite(tuner.history_[0]["train_loss"])
    assert tuner.classes_["sentiment"].tolist() == ["negative", "neutral", "positive"]


@pytest.mark.parametrize(
    "params",
    [
        {"head": "mlp", "hidden_size": 16},
        {"task_weights": "learned"},
        {"task_weights": {"category": 1.0, "sentiment": 2.0}},
        {"class_weight": "balanced"},
        {"freeze_layers": 1},
        {"freeze_encoder": True},
    ],
)
def test_training_options(tiny_model, clothing, params):
    tuner = tiny_tuner(tiny_model, epochs=1, **params).fit(clothing["text"], clothing[TASKS])
    assert set(tuner.task_weights_) == set(TASKS)
    assert tuner.predict(clothing["text"].head(3)).shape == (3, 2)


def test_learned_weights_move(tiny_model, clothing):
    tuner = tiny_tuner(tiny_model, epochs=2, task_weights="learned").fit(clothing["text"], clothing[TASKS])
    assert tuner.task_weights_["category"] != pytest.approx(1.0)


def test_freeze_encoder_keeps_weights(tiny_model, clothing):
    tuner = tiny_tuner(tiny_model, epochs=1, freeze_encoder=True).fit(clothing["text"], clothing[TASKS])
    np.testing.assert_allclose(
        tuner.transform(["fits well"]), SentenceTransformer(tiny_model, device="cpu").encode(["fits well"]), atol=1e-6
    )


def test_freeze_layers_keeps_lower_layers(tiny_model, clothing):
    tuner = tiny_tuner(tiny_model, epochs=1, freeze_layers=1).fit(clothing["text"], clothing[TASKS])
    original = SentenceTransformer(tiny_model, device="cpu")[0].auto_model
    tuned = SentenceTransformer(tuner.encoder_path_, device="cpu")[0].auto_model
    assert torch.equal(original.encoder.layer[0].output.dense.weight, tuned.encoder.layer[0].output.dense.weight)
    assert not torch.equal(original.encoder.layer[1].output.dense.weight, tuned.encoder.layer[1].output.dense.weight)


def test_invalid_task_weights(tiny_model, clothing):
    with pytest.raises(ValueError, match="task_weights has keys"):
        tiny_tuner(tiny_model, task_weights={"category": 1.0}).fit(clothing["text"], clothing[TASKS])


def test_pipeline_with_xgboost_saves(tiny_model, clothing, tmp_path):
    pipeline = Pipeline(
        [("encoder", tiny_tuner(tiny_model, epochs=1)), ("classifier", MultiTaskClassifier(XGBoostHead(n_estimators=20)))]
    )
    pipeline.fit(clothing["text"], clothing[TASKS])
    save_pipeline(pipeline, tmp_path / "model")
    restored = load_pipeline(tmp_path / "model")
    assert restored.named_steps["encoder"].encoder_path_.startswith(str(tmp_path / "model"))
    texts = clothing["text"].tail(5)
    pd.testing.assert_frame_equal(restored.predict(texts), pipeline.predict(texts))


def test_fine_tuner_saves_alone(tiny_model, clothing, tmp_path):
    tuner = tiny_tuner(tiny_model, epochs=1).fit(clothing["text"], clothing[TASKS])
    save_pipeline(tuner, tmp_path / "model")
    restored = load_pipeline(tmp_path / "model")
    pd.testing.assert_frame_equal(restored.predict(clothing["text"].head(5)), tuner.predict(clothing["text"].head(5)))


def test_real_minilm_short_run(clothing):
    sample = clothing.head(48)
    tuner = MultiTaskFineTuner(epochs=1, batch_size=16, max_seq_length=64, show_progress_bar=False)
    tuner.fit(sample["text"], sample[TASKS])
    assert tuner.transform(["soft and warm"]).shape == (1, 384)
    assert tuner.history_[0]["train_loss"] > 0


def test_cli_finetune_then_train(tiny_model, clothing_csv, tmp_path, capsys):
    from mtl_hybrid.cli import main

    tuned = tmp_path / "tuned"
    common = ["--data", str(clothing_csv), "--task", "category", "--task", "sentiment", "--group-column", "clothing_id"]
    assert main(["finetune", *common, "--encoder", tiny_model, "--max-seq-length", "32", "--output", str(tuned)]) == 0
    metrics = pd.read_json(tuned / "metrics.json", typ="series")
    assert set(metrics["tasks"]) == set(TASKS)
    assert metrics["best_epoch"] == 1
    assert not (tmp_path / "tuned.checkpoints").exists()

    assert main(["predict", "--model", str(tuned), "A soft sweater", "Torn on arrival"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-3] == "text,category,category_probability,sentiment,sentiment_probability"

    hybrid = tmp_path / "hybrid"
    assert main(["train", *common, "--encoder", str(tuned), "--cache-dir", str(tmp_path / "cache"), "--output", str(hybrid)]) == 0
    assert "encoder: fine-tuned encoder of" in capsys.readouterr().out
    assert (hybrid / "metrics.json").is_file()
