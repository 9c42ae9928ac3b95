"""MultiTaskFineTuner: train the sentence encoder and one head per task together.

The encoder and the heads are trained on the sum of the tasks' weighted
cross-entropy losses. A missing label (None or NaN) masks that row out of its
task's loss only. After ``fit`` the fine-tuned encoder is a standard
sentence-transformers directory (``encoder_path_``), loadable anywhere with
``SentenceTransformer(path)``; ``transform`` returns its embeddings, so the
fine-tuner can sit in a ``Pipeline`` in front of :class:`MultiTaskClassifier`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted

from mtl_hybrid.encoding import (
    SentenceEncoder,
    replace_lone_surrogates,
    resolve_model_reference,
    validate_texts,
)
from mtl_hybrid.multitask import missing_label_mask, targets_as_frame

logger = logging.getLogger(__name__)

__all__ = ["MultiTaskFineTuner"]

IGNORE_INDEX = -100
CHECKPOINT_STATE = "state.pt"


def _build_head(kind: str, dimension: int, n_classes: int, hidden_size: int, dropout: float):
    from torch import nn

    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(dimension, n_classes))
    return nn.Sequential(
        nn.Dropout(dropout), nn.Linear(dimension, hidden_size), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden_size, n_classes)
    )


def _head_key(index: int) -> str:
    """Return the ModuleDict key of a task's head (task names may contain dots)."""
    return f"task{index}"


def _linear_schedule(warmup_steps: int, total_steps: int):
    """Return a LambdaLR factor: linear warm-up to 1, then linear decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        return max(0.0, (total_steps - step) / max(total_steps - warmup_steps, 1))

    return factor


def _save_atomically(write, target: Path) -> None:
    """Run ``write(folder)`` on a temporary sibling folder, then rename it to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(staging)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class MultiTaskFineTuner(TransformerMixin, BaseEstimator):
    """Fine-tune a sentence-transformers encoder with one classification head per task.

    Loss: the sum over tasks of ``w_t * CE_t``. With ``task_weights="learned"`` each
    task gets a learned log-variance ``s_t`` and contributes ``exp(-s_t) * CE_t + s_t / 2``
    (homoscedastic uncertainty weighting, Kendall, Gal and Cipolla, CVPR 2018), so
    noisier tasks are weighted down.

    Parameters
    ----------
    model_name_or_path : str, default=None
        Encoder to start from; ``None`` is all-MiniLM-L6-v2 from the installed package.
    head : {"linear", "mlp"}, default="linear"
        Head per task: a linear layer, or one hidden ReLU layer of ``hidden_size``.
    hidden_size : int, default=256
        Width of the MLP head's hidden layer.
    dropout : float, default=0.1
        Dropout before each head layer.
    task_weights : "equal", "learned" or dict of {task: float}, default="equal"
        Weight of each task's loss.
    class_weight : {"balanced"} or None, default=None
        Weight each task's classes inversely to their frequency.
    epochs : int, default=1
        Passes over the training rows.
    batch_size : int, default=16
        Texts per optimisation step.
    max_seq_length : int, default=128
        Token window during training and encoding; longer texts are truncated.
    encoder_lr, head_lr : float, default=2e-5, 1e-3
        AdamW learning rates of the encoder and of the heads.
    weight_decay : float, default=0.01
        AdamW weight decay.
    warmup_ratio : float, default=0.1
        Share of the steps with a linear learning-rate warm-up; the rest decays linearly to 0.
    max_grad_norm : float, default=1.0
        Gradient clipping norm.
    freeze_encoder : bool, default=False
        Train the heads only, on the frozen encoder's cached embeddings.
    freeze_layers : int, default=0
        Freeze the token embeddings and this many lower transformer layers.
    validation_fraction : float or None, default=0.1
        Share of rows held out to pick the best epoch by mean macro-F1; ``None`` keeps the last.
    n_iter_no_change : int, default=2
        Stop after this many epochs without a better validation score.
    checkpoint_dir : str, default=None
        Folder for a checkpoint after every epoch; ``fit`` resumes from the last one
        made with the same data and parameters. ``None`` uses a new temporary folder.
        ``epochs`` is not part of that match, so raising it and refitting continues
        training, with the learning-rate schedule stretched to the new length.
    device : str, default=None
        Torch device; ``None`` picks CUDA when available.
    show_progress_bar : bool, default=True
        Show a tqdm bar per epoch.
    random_state : int, default=0
        Seed of the split, the batch order, dropout and head initialisation.

    Attributes
    ----------
    tasks_ : list of str
        Task names.
    classes_ : dict of {task: ndarray}
        Labels of each task, in the order of its probability columns.
    encoder_path_ : str
        Directory of the fine-tuned sentence-transformers model.
    history_ : list of dict
        Per epoch: training loss, validation macro-F1 per task and their mean.
    best_epoch_ : int
        Epoch (1-based) whose weights were kept.
    task_weights_ : dict of {task: float}
        Final weight of each task's loss (``exp(-s_t)`` when learned).
    """

    _parameter_constraints: dict = {
        "model_name_or_path": [str, os.PathLike, None],
        "head": [StrOptions({"linear", "mlp"})],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "task_weights": [StrOptions({"equal", "learned"}), dict],
        "class_weight": [StrOptions({"balanced"}), None],
        "epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_seq_length": [Interval(Integral, 1, None, closed="left")],
        "encoder_lr": [Interval(Real, 0, None, closed="left")],
        "head_lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "warmup_ratio": [Interval(Real, 0, 1, closed="both")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither"), None],
        "freeze_encoder": ["boolean"],
        "freeze_layers": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "checkpoint_dir": [str, os.PathLike, None],
        "device": [str, None],
        "show_progress_bar": ["boolean"],
        "random_state": [Integral],
    }

    def __init__(
        self,
        model_name_or_path=None,
        *,
        head="linear",
        hidden_size=256,
        dropout=0.1,
        task_weights="equal",
        class_weight=None,
        epochs=1,
        batch_size=16,
        max_seq_length=128,
        encoder_lr=2e-5,
        head_lr=1e-3,
        weight_decay=0.01,
        warmup_ratio=0.1,
        max_grad_norm=1.0,
        freeze_encoder=False,
        freeze_layers=0,
        validation_fraction=0.1,
        n_iter_no_change=2,
        checkpoint_dir=None,
        device=None,
        show_progress_bar=True,
        random_state=0,
    ):
        self.model_name_or_path = model_name_or_path
        self.head = head
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.task_weights = task_weights
        self.class_weight = class_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length
        self.encoder_lr = encoder_lr
        self.head_lr = head_lr
        self.weight_decay = weight_decay
        self.warmup_ratio = warmup_ratio
        self.max_grad_norm = max_grad_norm
        self.freeze_encoder = freeze_encoder
        self.freeze_layers = freeze_layers
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.checkpoint_dir = checkpoint_dir
        self.device = device
        self.show_progress_bar = show_progress_bar
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y):
        """Fine-tune the encoder and the task heads on texts ``X`` and labels ``y``.

        Parameters
        ----------
        X : sequence of str
            Texts.
        y : DataFrame or array-like of shape (n_samples,) or (n_samples, n_tasks)
            Labels per task; None or NaN marks a missing label.
        """
        import torch

        self._validate_params()
        texts = [replace_lone_surrogates(text) for text in validate_texts(X)]
        if not texts:
            raise ValueError("X is empty: need at least 2 texts to fine-tune.")
        Y, self._y_is_frame, self._y_is_1d = targets_as_frame(y)
        if len(Y) != len(texts):
            raise ValueError(f"X and y have different lengths: {len(texts)} rows in X, {len(Y)} in y.")
        self.tasks_ = list(Y.columns)
        if isinstance(self.task_weights, dict) and set(self.task_weights) != set(self.tasks_):
            raise ValueError(f"task_weights has keys {sorted(self.task_weights)}; expected the tasks {self.tasks_}.")

        self.classes_, codes = {}, {}
        for task in self.tasks_:
            labels = Y[task].to_numpy(dtype=object)
            present = ~missing_label_mask(labels)
            classes = np.unique(labels[present].astype(str))
            if len(classes) < 2:
                raise ValueError(f"Classifier needs samples of at least 2 classes, but task {task!r} has {len(classes)}.")
            self.classes_[task] = classes
            task_codes = np.full(len(labels), IGNORE_INDEX, dtype=np.int64)
            task_codes[present] = np.searchsorted(classes, labels[present].astype(str))
            codes[task] = task_codes

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        workdir = Path(self.checkpoint_dir) if self.checkpoint_dir is not None else Path(tempfile.mkdtemp(prefix="mtl-hybrid-finetune-"))
        self._train(texts, codes, device, workdir, self._fingerprint(texts, codes))
        return self

    def _fingerprint(self, texts: list[str], codes: dict) -> str:
        """Hash of the data and of every parameter that changes training, for resuming."""
        digest = hashlib.sha256()
        for text in texts:
            digest.update(text.encode("utf-8", errors="surrogatepass") + b"\0")
        for task in self.tasks_:
            digest.update(task.encode() + codes[task].tobytes())
        params = {
            key: value
            for key, value in self.get_params().items()
            if key not in {"checkpoint_dir", "device", "show_progress_bar", "epochs", "n_iter_no_change"}
        }
        digest.update(json.dumps(params, sort_keys=True, default=str).encode())
        digest.update(resolve_model_reference(self.model_name_or_path).encode())
        return digest.hexdigest()

    def _split(self, n: int, codes: dict) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(n)
        if self.validation_fraction is None:
            return rows, rows[:0]
        first = codes[self.tasks_[0]]
        counts = pd.Series(first).value_counts()
        n_validation = max(int(round(self.validation_fraction * n)), 1)
        # Stratify only when every label can appear on both sides of the split.
        stratify = first if counts.min() >= 2 and n_validation >= len(counts) else None
        return train_test_split(rows, test_size=n_validation, stratify=stratify, random_state=self.random_state)

    def _train(self, texts, codes, device, workdir: Path, fingerprint: str) -> None:
        import torch
        from sentence_transformers import SentenceTransformer
        from tqdm.auto import tqdm

        torch.manual_seed(self.random_state)
        last, best = workdir / "last", workdir / "best"
        saved = None
        if (last / CHECKPOINT_STATE).is_file():
            saved = torch.load(last / CHECKPOINT_STATE, map_location=device, weights_only=True)
            if saved["fingerprint"] != fingerprint:
                raise ValueError(
                    f"checkpoint_dir {workdir} has a checkpoint of another run (different data or parameters); "
                    "remove it or choose another checkpoint_dir."
                )

        reference = resolve_model_reference(self.model_name_or_path)
        if saved is not None and (last / "encoder").is_dir():
            reference = str(last / "encoder")
        model = SentenceTransformer(reference, device=device, local_files_only=os.path.isdir(reference))
        model.max_seq_length = self.max_seq_length
        self._freeze(model)
        dimension = model.get_embedding_dimension()
        heads = torch.nn.ModuleDict(
            {
                _head_key(index): _build_head(self.head, dimension, len(self.classes_[task]), self.hidden_size, self.dropout)
                for index, task in enumerate(self.tasks_)
            }
        ).to(device)
        log_vars = torch.nn.Parameter(torch.zeros(len(self.tasks_), device=device))

        train_rows, validation_rows = self._split(len(texts), codes)
        class_weights = self._class_weights(codes, train_rows, device)
        frozen_embeddings = None
        if self.freeze_encoder:
            frozen_embeddings = torch.from_numpy(self._frozen_encoder().transform(texts)).to(device)

        head_params = list(heads.parameters()) + ([log_vars] if self.task_weights == "learned" else [])
        groups = [{"params": head_params, "lr": self.head_lr, "weight_decay": self.weight_decay}]
        encoder_params = [p for p in model.parameters() if p.requires_grad]
        if encoder_params:
            groups.append({"params": encoder_params, "lr": self.encoder_lr, "weight_decay": self.weight_decay})
        optimizer = torch.optim.AdamW(groups)
        steps_per_epoch = math.ceil(len(train_rows) / self.batch_size)
        total_steps = steps_per_epoch * self.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _linear_schedule(int(self.warmup_ratio * total_steps), total_steps)
        )

        state = {"epoch": 0, "history": [], "best_score": -np.inf, "best_epoch": 0, "stale": 0}
        if saved is not None:
            heads.load_state_dict(saved["heads"])
            log_vars.data.copy_(saved["log_vars"].to(device))
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            torch.set_rng_state(saved["torch_rng"])
            state = saved["state"]
            logger.info("Resuming fine-tuning after epoch %d of %d from %s", state["epoch"], self.epochs, last)

        rng = np.random.default_rng(self.random_state)
        for _ in range(state["epoch"]):
            rng.permutation(len(train_rows))

        weights = self._fixed_task_weights()
        for epoch in range(state["epoch"], self.epochs):
            if state["stale"] >= self.n_iter_no_change:
                logger.info("Stopping early: %d epochs without a better validation score", state["stale"])
                break
            model.train()
            heads.train()
            order = train_rows[rng.permutation(len(train_rows))]
            batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
            progress = tqdm(batches, desc=f"epoch {epoch + 1}/{self.epochs}", disable=not self.show_progress_bar)
            running = 0.0
            for step, batch in enumerate(progress, start=1):
                if frozen_embeddings is not None:
                    embeddings = frozen_embeddings[batch]
                else:
                    features = model.preprocess([texts[i] for i in batch])
                    features = {k: (v.to(device) if hasattr(v, "to") else v) for k, v in features.items()}
                    embeddings = model(features)["sentence_embedding"]

                loss = self._loss(heads, embeddings, codes, batch, class_weights, weights, log_vars, device)
                optimizer.zero_grad()
                loss.backward()
                if self.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], self.max_grad_norm)
                optimizer.step()
                scheduler.step()
                running += float(loss.detach())
                progress.set_postfix(loss=f"{running / step:.4f}")

            record = {"epoch": epoch + 1, "train_loss": running / max(len(batches), 1)}
            if len(validation_rows):
                scores = self._validation_scores(model, heads, texts, codes, validation_rows, frozen_embeddings, device)
                record.update({"validation_macro_f1": scores, "validation_mean_macro_f1": float(np.mean(list(scores.values())))})
                improved = record["validation_mean_macro_f1"] > state["best_score"]
            else:
                improved = True
            state["history"].append(record)
            state["epoch"] = epoch + 1
            logger.info("Epoch %d: %s", epoch + 1, record)

            if improved:
                state["best_score"] = record.get("validation_mean_macro_f1", np.inf)
                state["best_epoch"] = epoch + 1
                state["stale"] = 0
                self._save_weights(best, model, heads, log_vars)
            else:
                state["stale"] += 1
            self._save_checkpoint(last, model, heads, log_vars, optimizer, scheduler, state, fingerprint)

        self._finish(best, state, device)

    def _freeze(self, model) -> None:
        if self.freeze_encoder:
            for parameter in model.parameters():
                parameter.requires_grad_(False)
            return
        if self.freeze_layers:
            backbone = model[0].auto_model
            layers = getattr(getattr(backbone, "encoder", None), "layer", None)
            if layers is None:
                raise ValueError(f"freeze_layers needs a BERT-like encoder with encoder.layer; {type(backbone).__name__} has none.")
            if self.freeze_layers > len(layers):
                raise ValueError(f"freeze_layers={self.freeze_layers} exceeds the encoder's {len(layers)} layers.")
            for module in [backbone.embeddings, *layers[: self.freeze_layers]]:
                for parameter in module.parameters():
                    parameter.requires_grad_(False)

    def _frozen_encoder(self) -> SentenceEncoder:
        return SentenceEncoder(
            self.model_name_or_path,
            batch_size=32,
            normalize_embeddings=False,
            max_seq_length=self.max_seq_length,
            device=self.device,
            show_progress_bar=self.show_progress_bar,
        ).fit()

    def _class_weights(self, codes, train_rows, device) -> dict:
        import torch

        weights = {}
        for task in self.tasks_:
            if self.class_weight is None:
                weights[task] = None
                continue
            present = codes[task][train_rows]
            present = present[present != IGNORE_INDEX]
            n_classes = len(self.classes_[task])
            found = np.unique(present)
            values = np.ones(n_classes)
            values[found] = compute_class_weight("balanced", classes=found, y=present)
            weights[task] = torch.tensor(values, dtype=torch.float32, device=device)
        return weights

    def _fixed_task_weights(self) -> dict:
        if isinstance(self.task_weights, dict):
            return {task: float(self.task_weights[task]) for task in self.tasks_}
        return {task: 1.0 for task in self.tasks_}

    def _loss(self, heads, embeddings, codes, batch, class_weights, weights, log_vars, device):
        import torch
        import torch.nn.functional as F

        total = embeddings.new_zeros(())
        for index, task in enumerate(self.tasks_):
            targets = torch.as_tensor(codes[task][batch], device=device)
            if not (targets != IGNORE_INDEX).any():
                continue
            loss = F.cross_entropy(heads[_head_key(index)](embeddings), targets, weight=class_weights[task], ignore_index=IGNORE_INDEX)
            if self.task_weights == "learned":
                total = total + torch.exp(-log_vars[index]) * loss + 0.5 * log_vars[index]
            else:
                total = total + weights[task] * loss
        return total

    def _validation_scores(self, model, heads, texts, codes, rows, frozen_embeddings, device) -> dict:
        import torch

        model.eval()
        heads.eval()
        with torch.no_grad():
            if frozen_embeddings is not None:
                embeddings = frozen_embeddings[rows]
            else:
                embeddings = model.encode([texts[i] for i in rows], batch_size=32, convert_to_tensor=True, show_progress_bar=False)
            scores = {}
            for index, task in enumerate(self.tasks_):
                truth = codes[task][rows]
                present = truth != IGNORE_INDEX
                predicted = heads[_head_key(index)](embeddings.to(device)).argmax(dim=1).cpu().numpy()
                scores[task] = float(f1_score(truth[present], predicted[present], average="macro")) if present.any() else float("nan")
        return scores

    def _save_weights(self, folder: Path, model, heads, log_vars) -> None:
        import torch

        def write(staging: Path) -> None:
            if not self.freeze_encoder:
                model.save(str(staging / "encoder"))
            torch.save({"heads": heads.state_dict(), "log_vars": log_vars.detach().cpu()}, staging / "heads.pt")

        _save_atomically(write, folder)

    def _save_checkpoint(self, folder, model, heads, log_vars, optimizer, scheduler, state, fingerprint) -> None:
        import torch

        def write(staging: Path) -> None:
            if not self.freeze_encoder:
                model.save(str(staging / "encoder"))
            torch.save(
                {
                    "fingerprint": fingerprint,
                    "heads": heads.state_dict(),
                    "log_vars": log_vars.detach().cpu(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "state": state,
                },
                staging / CHECKPOINT_STATE,
            )

        _save_atomically(write, folder)

    def _finish(self, best: Path, state: dict, device) -> None:
        import torch

        saved = torch.load(best / "heads.pt", map_location="cpu", weights_only=True)
        self.heads_ = {key: value.numpy() for key, value in saved["heads"].items()}
        log_vars = saved["log_vars"].numpy()
        if self.task_weights == "learned":
            self.task_weights_ = {task: float(np.exp(-log_vars[i])) for i, task in enumerate(self.tasks_)}
        else:
            self.task_weights_ = self._fixed_task_weights()
        self.encoder_path_ = str(best / "encoder") if not self.freeze_encoder else resolve_model_reference(self.model_name_or_path)
        self.history_ = state["history"]
        self.best_epoch_ = state["best_epoch"]
        self.embedding_dimension_ = int(self._encoder().fit().embedding_dimension_)
        self._n_features_out = self.embedding_dimension_
        self._head_modules = None

    # --------------------------------------------------------------- inference

    def _encoder(self) -> SentenceEncoder:
        return SentenceEncoder(
            self.encoder_path_,
            normalize_embeddings=False,
            max_seq_length=self.max_seq_length,
            device=self.device,
            show_progress_bar=False,
        )

    def transform(self, X) -> np.ndarray:
        """Return the fine-tuned encoder's embeddings of ``X``, shape (n_texts, dimension)."""
        check_is_fitted(self, "encoder_path_")
        return self._encoder().fit().transform(X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """Return ``finetuned0`` ... ``finetuned{d-1}``, one name per embedding column."""
        check_is_fitted(self, "encoder_path_")
        return np.asarray([f"finetuned{i}" for i in range(self.embedding_dimension_)], dtype=object)

    def _heads(self):
        import torch

        if getattr(self, "_head_modules", None) is None:
            modules = {}
            for index, task in enumerate(self.tasks_):
                head = _build_head(self.head, self.embedding_dimension_, len(self.classes_[task]), self.hidden_size, self.dropout)
                prefix = f"{_head_key(index)}."
                head.load_state_dict({k[len(prefix):]: torch.from_numpy(v) for k, v in self.heads_.items() if k.startswith(prefix)})
                modules[task] = head.eval()
            self._head_modules = modules
        return self._head_modules

    def predict_proba(self, X) -> list | np.ndarray:
        """Return class probabilities per task: a list of arrays in ``tasks_`` order
        (a single array when fitted on a 1-D ``y``)."""
        import torch

        embeddings = torch.from_numpy(self.transform(X))
        with torch.no_grad():
            probabilities = [torch.softmax(self._heads()[task](embeddings), dim=1).numpy() for task in self.tasks_]
        return probabilities[0] if self._y_is_1d else probabilities

    def predict(self, X):
        """Predict every task with the fine-tuned heads: a DataFrame with one column
        per task (a 1-D array when fitted on a 1-D ``y``)."""
        probabilities = self.predict_proba(X)
        if self._y_is_1d:
            return self.classes_[self.tasks_[0]][np.argmax(probabilities, axis=1)]
        return pd.DataFrame(
            {task: self.classes_[task][np.argmax(p, axis=1)] for task, p in zip(self.tasks_, probabilities)}
        )

    def score(self, X, y) -> float:
        """Return the mean macro-F1 over tasks, each on its rows with a label."""
        Y, _, _ = targets_as_frame(y)
        predicted = self.predict(X)
        predicted = pd.DataFrame({self.tasks_[0]: predicted}) if self._y_is_1d else predicted
        scores = []
        for task, column in zip(self.tasks_, Y.columns):
            present = ~missing_label_mask(Y[column])
            scores.append(f1_score(Y[column][present].astype(str), predicted[task][present].astype(str), average="macro"))
        return float(np.mean(scores))

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_head_modules", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags
