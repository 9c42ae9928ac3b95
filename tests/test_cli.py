"""The mtl-hybrid command, run in-process and as a subprocess on real reviews."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from mtl_hybrid import clear_memory_cache
from mtl_hybrid.cli import main
from mtl_hybrid.persistence import read_manifest


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def model_dir(clothing_csv, cache_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("models") / "clothing"
    code = main(
        [
            "train", "--data", str(clothing_csv), "--task", "category", "--task", "sentiment",
            "--group-column", "clothing_id", "--cache-dir", str(cache_dir), "--output", str(output),
        ]
    )
    assert code == 0
    return output


def test_train_writes_metrics(model_dir):
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert set(metrics["tasks"]) == {"category", "sentiment"}
    for task in ("category", "sentiment"):
        assert 0 <= metrics["tasks"][task]["accuracy"] <= 1
        assert 0 <= metrics["tasks"][task]["macro_f1"] <= 1
        assert "per_class" in metrics["tasks"][task]
    assert metrics["n_train"] + metrics["n_test"] == 180
    assert "metrics.json" in read_manifest(model_dir)["files"]


def test_predict_texts_csv(model_dir, capsys):
    texts = ["This dress is gorgeous and fits perfectly", "The pants ripped on the first day", "Okay top, nothing special"]
    assert main(["predict", "--model", str(model_dir), "--no-cache", *texts]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "text,category,category_probability,sentiment,sentiment_probability"
    assert len(lines) == 4
    rows = pd.read_csv(pd.io.common.StringIO("\n".join(lines)))
    assert rows["text"].tolist() == texts
    assert rows["category_probability"].between(0, 1).all()
    assert set(rows["sentiment"]) <= {"negative", "neutral", "positive"}


def test_predict_invalid_utf8_argument(model_dir, tmp_path):
    text = b"\xff\xfe bad fit".decode("utf-8", "surrogateescape")
    output = tmp_path / "predictions.jsonl"

    code = main(["predict", "--model", str(model_dir), "--no-cache", "--format", "jsonl", "--output", str(output), text])
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]

    assert code == 0
    assert len(records) == 1
    assert records[0]["text"] == "\ufffd\ufffd bad fit"


def test_predict_header_only_csv(model_dir, tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("text\n", encoding="utf-8")

    code = main(["predict", "--model", str(model_dir), "--data", str(path)])

    assert code == 2
    assert "has a header but no rows" in capsys.readouterr().err


def test_predict_csv_jsonl(model_dir, clothing_csv, tmp_path):
    output = tmp_path / "predictions.jsonl"
    assert main(["predict", "--model", str(model_dir), "--data", str(clothing_csv), "--format", "jsonl", "--output", str(output)]) == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 180
    assert {"category", "category_probability", "sentiment", "sentiment_probability"} <= set(records[0])


def test_evaluate_unseen_label(model_dir, clothing, tmp_path, capsys):
    data = clothing.head(30).copy()
    data.loc[:4, "category"] = "Shoes"
    path = tmp_path / "eval.csv"
    data.to_csv(path, index=False)
    assert main(["evaluate", "--model", str(model_dir), "--data", str(path), "--output", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert "labels never seen in training: ['Shoes']" in out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["tasks"]["category"]["unseen_labels"] == ["Shoes"]
    assert metrics["tasks"]["category"]["per_class"]["Shoes"]["recall"] == 0.0


def test_existing_output_refused(model_dir, clothing_csv, capsys):
    code = main(["train", "--data", str(clothing_csv), "--task", "category", "--output", str(model_dir)])
    assert code == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["predict", "--model", "/nonexistent/model", "some text"], "Model directory not found: /nonexistent/model"),
        (["train", "--data", "/nonexistent.csv", "--task", "category", "--output", "/tmp/x"], "CSV file not found"),
    ],
)
def test_bad_paths_one_line(arguments, message, capsys):
    assert main(arguments) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_incomplete_model_dir(model_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text((model_dir / "manifest.json").read_text())
    assert main(["predict", "--model", str(broken), "text"]) == 2
    assert "heads/category.ubj is missing" in capsys.readouterr().err


def test_missing_column_named(clothing_csv, tmp_path, capsys):
    assert main(["train", "--data", str(clothing_csv), "--task", "department", "--output", str(tmp_path / "m")]) == 2
    assert "no column(s) ['department']; available columns: ['text'" in capsys.readouterr().err


def test_non_utf8_csv(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes("text,category\nr\xe9sum\xe9 top,Tops\n".encode("latin-1"))
    assert main(["train", "--data", str(path), "--task", "category", "--output", str(tmp_path / "m")]) == 2
    assert "is not valid UTF-8" in capsys.readouterr().err


def test_single_class_task(clothing, tmp_path, capsys):
    path = tmp_path / "one.csv"
    clothing.assign(sentiment="positive").to_csv(path, index=False)
    code = main(["train", "--data", str(path), "--task", "sentiment", "--cache-dir", str(tmp_path / "c"), "--output", str(tmp_path / "m")])
    assert code == 2
    assert "task 'sentiment' has only the class 'positive' in the training part" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
def test_help(command):
    result = subprocess.run([sys.executable, "-m", "mtl_hybrid.cli", command, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "--model" in result.stdout or "--data" in result.stdout


def test_second_train_encodes_nothing(clothing_csv, tmp_path):
    """Two train runs in separate processes share the on-disk embedding cache."""
    env = {**os.environ, "MTL_HYBRID_CACHE_DIR": str(tmp_path / "cache")}
    encoded = []
    for run in ("first", "second"):
        command = [
            sys.executable, "-m", "mtl_hybrid.cli", "train", "--data", str(clothing_csv),
            "--task", "category", "--task", "sentiment", "--output", str(tmp_path / run),
        ]
        subprocess.run(command, check=True, env=env, capture_output=True, text=True)
        encoded.append(json.loads((tmp_path / run / "metrics.json").read_text())["texts_encoded"])
    assert encoded == [180, 0]


def test_clear_memory_between_runs(clothing_csv, cache_dir, tmp_path):
    clear_memory_cache()
    assert main(["train", "--data", str(clothing_csv), "--task", "category", "--cache-dir", str(cache_dir), "--output", str(tmp_path / "m")]) == 0
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["texts_encoded"] == 0


def test_overwrite_only_model_dirs(clothing_csv, tmp_path, capsys):
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    code = main(["train", "--data", str(clothing_csv), "--task", "category", "--output", str(folder), "--overwrite"])
    assert code == 2
    assert "replaces only model directories" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "keep me"


def test_missing_labels_train(clothing, tmp_path):
    data = clothing.copy()
    data.loc[:30, "sentiment"] = None
    path = tmp_path / "partial.csv"
    data.to_csv(path, index=False)
    output = tmp_path / "m"
    code = main(["train", "--data", str(path), "--task", "category", "--task", "sentiment", "--group-column", "clothing_id",
                 "--cache-dir", str(tmp_path / "c"), "--output", str(output)])
    assert code == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["tasks"]["sentiment"]["n_samples"] < metrics["tasks"]["category"]["n_samples"]


def test_predict_empty_cell_and_ids(model_dir, tmp_path):
    path = tmp_path / "texts.csv"
    path.write_text("id,text\n7,Lovely dress\n8,\n9,NA\n")
    output = tmp_path / "out.csv"
    assert main(["predict", "--model", str(model_dir), "--data", str(path), "--id-column", "id", "--output", str(output)]) == 0
    rows = pd.read_csv(output, keep_default_na=False)
    assert rows["id"].tolist() == [7, 8, 9]
    assert rows["text"].tolist() == ["Lovely dress", "", "NA"]
    assert oct(output.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--test-size", "1.5"], "--test-size: must be a number between 0 and 1"),
        (["--batch-size", "0"], "--batch-size: must be an integer of at least 1"),
        (["--max-seq-length", "0"], "--max-seq-length: must be an integer of at least 1"),
    ],
)
def test_invalid_options_rejected_early(clothing_csv, tmp_path, arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(clothing_csv), "--task", "category", "--output", str(tmp_path / "m"), *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_predict_output_directory_rejected(model_dir, tmp_path, capsys):
    assert main(["predict", "--model", str(model_dir), "--output", str(tmp_path), "text"]) == 2
    assert "is a directory; give a file path" in capsys.readouterr().err


def test_model_path_is_file(clothing_csv, capsys):
    assert main(["predict", "--model", str(clothing_csv), "text"]) == 2
    assert "is a file; expected a model directory" in capsys.readouterr().err


def test_version_option(capsys):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("mtl-hybrid 0.")


def test_predict_chunks_match_whole(model_dir, clothing, tmp_path):
    path = tmp_path / "texts.csv"
    clothing.head(30).assign(id=range(30))[["id", "text"]].to_csv(path, index=False)
    outputs = {}
    for chunk_size in ("7", "10000"):
        output = tmp_path / f"chunks-{chunk_size}.csv"
        arguments = ["predict", "--model", str(model_dir), "--data", str(path), "--id-column", "id", "--chunk-size", chunk_size]
        assert main([*arguments, "--output", str(output)]) == 0
        outputs[chunk_size] = pd.read_csv(output)
    chunked, whole = outputs["7"], outputs["10000"]
    assert chunked["id"].tolist() == list(range(30))
    assert list(chunked.columns) == list(whole.columns)
    for task in ("category", "sentiment"):
        assert chunked[task].tolist() == whole[task].tolist()
        assert (chunked[f"{task}_probability"] - whole[f"{task}_probability"]).abs().max() <= 1e-3


def test_predict_failure_keeps_output(model_dir, tmp_path, capsys):
    path = tmp_path / "broken.csv"
    rows = [f"{i},review number {i}" for i in range(20)] + ["20,a row,with an extra field"]
    path.write_text("id,text\n" + "\n".join(rows) + "\n")
    output = tmp_path / "out.csv"
    output.write_text("previous predictions\n")

    code = main(["predict", "--model", str(model_dir), "--data", str(path), "--chunk-size", "5", "--output", str(output)])
    assert code == 2
    assert "is not a valid CSV file" in capsys.readouterr().err
    assert output.read_text() == "previous predictions\n"
    assert sorted(item.name for item in tmp_path.iterdir()) == ["broken.csv", "out.csv"]


def test_predict_header_only(model_dir, tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("id,text\n")
    assert main(["predict", "--model", str(model_dir), "--data", str(path)]) == 2
    assert "has a header but no rows" in capsys.readouterr().err


def test_predict_int8_backend(model_dir, capsys):
    texts = ["This dress is gorgeous and fits perfectly", "The pants ripped on the first day"]
    assert main(["predict", "--model", str(model_dir), "--no-cache", "--backend", "onnx-int8", *texts]) == 0
    rows = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert rows["text"].tolist() == texts
    assert set(rows["sentiment"]) <= {"negative", "neutral", "positive"}


def test_invalid_backend_option(model_dir, capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(model_dir), "--backend", "tensorrt", "text"])
    assert "--backend: invalid choice: 'tensorrt'" in capsys.readouterr().err
