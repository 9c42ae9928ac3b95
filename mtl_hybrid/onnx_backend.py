"""ONNX Runtime backends of SentenceEncoder: export, int8 quantisation and inference.

A sentence-transformers model made of a Transformer, a Pooling and optionally a
Normalize module is exported once to ONNX and stored on disk, in a folder keyed
by the model fingerprint, the variant (``fp32`` or ``int8``) and
:data:`EXPORT_VERSION`. The folder contains the ONNX file, the tokenizer and
``export.json`` (pooling mode, normalisation, input names), so inference needs
neither the torch model nor sentence-transformers.

Every export is written to a temporary folder and renamed into place, so a reader
never sees a half-written model. When two processes export the same model at once,
the first rename wins and the other process discards its copy.

sentence-transformers ships ``export_dynamic_quantized_onnx_model``, but it and
its ONNX backend need Optimum, which sentence-transformers 6.3 cannot be
installed with. This module exports with ``torch.onnx.export`` instead and
quantises with ONNX Runtime's own tools.

The int8 variant quantises every weight matrix of the float export, with one
scale per output channel. Before that, the outlier channels of every layer-norm
output that feeds a weight matrix are scaled down and the matrix's rows scaled up
to match (SmoothQuant, Xiao et al. 2023, https://arxiv.org/abs/2211.10438). The
float result is unchanged, but the single int8 scale of each activation tensor no
longer has to cover a few huge channels. The channel ranges come from the short
texts in ``resources/calibration.txt``, so an export depends on the model only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np

from mtl_hybrid.encoding import model_fingerprint, resolve_model_reference
from mtl_hybrid.streaming import default_mode

logger = logging.getLogger(__name__)

__all__ = [
    "EXPORT_VERSION",
    "ONNX_DIR_VARIABLE",
    "ExportError",
    "OnnxSentenceModel",
    "default_onnx_dir",
    "export_onnx_model",
    "load_onnx_model",
]

ONNX_DIR_VARIABLE = "MTL_HYBRID_ONNX_DIR"

# Part of every export folder's key: raise it when the export or the quantisation
# changes, so models exported by older code are not reused.
EXPORT_VERSION = 2

# ONNX Runtime fuses each residual Add and LayerNormalization into one
# SkipLayerNormalization node. On the CPU (onnxruntime 1.32, 2 threads, a
# (32, 256, 384) input) that kernel took 7.8 ms against 1.4 ms for the two nodes
# it replaces (experiments/bench_layer_norm.py). So the export skips that fusion
# and every session disables it.
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)

# SmoothQuant's migration strength: 0 leaves the activations as they are, 1 moves
# all of their range into the weights, and 0.5 splits it evenly.
SMOOTHING_ALPHA = 0.5
# Bounds of the per-channel smoothing factors, so that a channel that is nearly
# zero in the calibration texts cannot blow up its weight row.
SMOOTHING_BOUNDS = (1e-2, 1e2)
# Producers of the activations that get smoothed: the layer norms, whose outputs
# carry BERT's outlier channels.
LAYER_NORM_OPS = ("LayerNormalization", "EmbedLayerNormalization", "SkipLayerNormalization")

# Age after which a staging folder counts as left by a killed export and is removed.
# An export of MiniLM takes seconds, so an hour leaves wide room for slow exports.
STALE_STAGING_SECONDS = 3600

SUPPORTED_POOLING = ("mean", "cls", "max")
MODEL_FILE = "model.onnx"
METADATA_FILE = "export.json"
CALIBRATION_FILE = "calibration.txt"

_EXPORT_LOCK = threading.Lock()


def default_onnx_dir() -> Path:
    """Return ``$MTL_HYBRID_ONNX_DIR``, or ``~/.cache/mtl_hybrid/onnx``."""
    value = os.environ.get(ONNX_DIR_VARIABLE)
    return Path(value) if value else Path.home() / ".cache" / "mtl_hybrid" / "onnx"


def _import_onnxruntime():
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            "The onnx and onnx-int8 backends need the packages onnxruntime and onnx; "
            "install them with `pip install mtl-hybrid[onnx]` or use backend='torch'."
        ) from error
    return onnxruntime


def export_onnx_model(
    model_name_or_path: str | os.PathLike | None = None,
    *,
    quantize: bool = False,
    onnx_dir: str | os.PathLike | None = None,
) -> Path:
    """Export a sentence-transformers model to ONNX once, and return the folder.

    Parameters
    ----------
    model_name_or_path : str or path-like, default=None
        The model, as for :class:`~mtl_hybrid.SentenceEncoder`.
    quantize : bool, default=False
        Return the int8 variant: smoothed activations and dynamic quantisation
        with one scale per output channel of each weight matrix (see the module's
        description).
    onnx_dir : str or path-like, default=None
        Folder of the exported models; ``None`` is :func:`default_onnx_dir`.

    Returns
    -------
    Path
        The export folder, containing ``model.onnx``, the tokenizer and ``export.json``.
        An existing export of the same model, variant and :data:`EXPORT_VERSION` is
        returned without exporting again.
    """
    _import_onnxruntime()
    reference = resolve_model_reference(model_name_or_path)
    root = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir()
    folder = _export_folder(reference, quantize, root)
    if _is_complete(folder):
        logger.debug("Reusing the ONNX export of %s in %s", reference, folder)
        return folder

    with _EXPORT_LOCK:
        if _is_complete(folder):
            return folder
        try:
            root.mkdir(parents=True, exist_ok=True)
            _remove_stale_staging(root, folder.name)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=root))
        except OSError as error:
            raise OSError(
                error.errno, f"Cannot write the ONNX export of {reference} to {root} ({error.strerror}); "
                f"set {ONNX_DIR_VARIABLE} to a writable folder."
            ) from error
        try:
            if quantize:
                _export_int8(reference, staging)
            else:
                _export_float(reference, staging)
            # mkdtemp makes the folder private, but an export is shared like any cache file.
            staging.chmod(default_mode(0o777))
            published = _publish(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if published:
        logger.info("Exported %s to %s", reference, folder)
    return folder


class ExportError(RuntimeError):
    """An ONNX export that cannot be loaded, even after exporting it again."""


def load_onnx_model(
    model_name_or_path: str | os.PathLike | None = None,
    *,
    quantize: bool = False,
    onnx_dir: str | os.PathLike | None = None,
) -> OnnxSentenceModel:
    """Export the model if needed (:func:`export_onnx_model`) and load it.

    An existing export that fails to load, for example a file cut short by a full
    disk, is discarded and exported again once.
    """
    folder = export_onnx_model(model_name_or_path, quantize=quantize, onnx_dir=onnx_dir)
    try:
        return OnnxSentenceModel(folder)
    except Exception as error:  # noqa: BLE001 (ONNX Runtime's load errors derive from Exception only)
        logger.warning("Exporting again: the ONNX export in %s could not be loaded (%s)", folder, error)
        with _EXPORT_LOCK:
            _discard(folder)
    folder = export_onnx_model(model_name_or_path, quantize=quantize, onnx_dir=onnx_dir)
    try:
        return OnnxSentenceModel(folder)
    except Exception as error:
        raise ExportError(f"The ONNX export in {folder} could not be loaded even after exporting it again: {error}") from error


def _export_folder(reference: str, quantize: bool, root: Path) -> Path:
    variant = "int8" if quantize else "fp32"
    key = json.dumps({"model": model_fingerprint(reference), "variant": variant, "export_version": EXPORT_VERSION}, sort_keys=True)
    return root / f"{variant}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _is_complete(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file() and (folder / METADATA_FILE).is_file()


def _remove_stale_staging(root: Path, name: str) -> None:
    """Delete the staging folders of exports of ``name`` that a killed process left
    behind: those untouched for :data:`STALE_STAGING_SECONDS`."""
    for path in [*root.glob(f".{name}.*"), *root.glob(f".discarded-{name}.*")]:
        try:
            if time.time() - path.stat().st_mtime > STALE_STAGING_SECONDS:
                logger.info("Removing %s, left by an interrupted export", path)
                shutil.rmtree(path, ignore_errors=True)
        except FileNotFoundError:  # another process removed it first
            continue


def _discard(folder: Path) -> None:
    """Move ``folder`` out of the way in one rename, then delete it."""
    trash = Path(tempfile.mkdtemp(prefix=f".discarded-{folder.name}.", dir=folder.parent))
    try:
        os.rename(folder, trash / folder.name)
    except FileNotFoundError:  # another process discarded it first
        pass
    shutil.rmtree(trash, ignore_errors=True)


def _publish(staging: Path, folder: Path) -> bool:
    """Rename a finished export into place and return True, or return False and
    keep the other export if another process was first.

    A folder without a model or metadata file at that place, left by hand or by
    older code, is replaced.
    """
    try:
        os.rename(staging, folder)
        return True
    except OSError:
        if _is_complete(folder):
            logger.debug("Another process exported %s first; using its copy", folder)
            return False
        if not folder.exists():
            raise
    logger.warning("Replacing the incomplete ONNX export in %s", folder)
    _discard(folder)
    os.rename(staging, folder)
    return True


def _check_supported(model, reference: str) -> dict:
    """Return the pooling and normalisation of a model the ONNX backends can run,
    or raise a ValueError that lists its modules."""
    names = [type(module).__name__ for module in model]
    structure_ok = names[:2] == ["Transformer", "Pooling"] and names[2:] in ([], ["Normalize"])
    pooling = getattr(model[1], "pooling_mode", None) if len(model) > 1 else None
    if not structure_ok or pooling not in SUPPORTED_POOLING:
        raise ValueError(
            f"The onnx backends run models made of Transformer, Pooling ({', '.join(SUPPORTED_POOLING)}) and "
            f"optionally Normalize modules; {reference} has {names} with pooling {pooling!r}. Use backend='torch'."
        )
    return {"pooling": pooling, "normalize": names[2:] == ["Normalize"]}


def _export_float(reference: str, staging: Path) -> None:
    """Export the transformer's token embeddings to ``staging/model.onnx`` with the
    tokenizer and ``export.json``; BERT models also get ONNX Runtime's fused kernels."""
    import torch
    from sentence_transformers import SentenceTransformer

    # A private copy: switching the attention implementation must not touch the
    # model that the torch backend shares.
    model = SentenceTransformer(reference, device="cpu", local_files_only=os.path.isdir(reference))
    metadata = _check_supported(model, reference)
    transformer, tokenizer = model[0].auto_model.eval(), model[0].tokenizer
    # The eager attention traces to plain MatMul and Softmax nodes, which the
    # ONNX Runtime optimizer below fuses into its Attention kernel.
    transformer.set_attn_implementation("eager")
    input_names = [name for name in tokenizer.model_input_names if name in ("input_ids", "attention_mask", "token_type_ids")]
    sample = tokenizer(["a short review", "a longer review of a product, with padding"], padding=True, return_tensors="pt")

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs):
            return self.transformer(**dict(zip(input_names, inputs))).last_hidden_state

    dynamic_axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, "token_embeddings"]}
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer warns about Python conditions in the masking code. They compare
        # the mask length with the sequence length, which are always equal here.
        warnings.simplefilter("ignore")
        # NOTE: the TorchScript-based exporter (dynamo=False) is deprecated since torch
        # 2.9; the torch.export-based one needs the onnxscript package and emits a graph
        # that ONNX Runtime's BERT fusions were not written for.
        torch.onnx.export(
            TokenEmbeddings(),
            tuple(sample[name] for name in input_names),
            str(staging / MODEL_FILE),
            dynamo=False,
            input_names=input_names,
            output_names=["token_embeddings"],
            dynamic_axes=dynamic_axes,
            opset_version=17,
        )

    config = transformer.config
    if config.model_type == "bert":
        _fuse_bert(staging / MODEL_FILE, config.num_attention_heads, config.hidden_size)
    tokenizer.save_pretrained(str(staging))
    metadata.update(
        # The tracer drops inputs the model never reads, such as token_type_ids of
        # a DistilBERT model given a BERT tokenizer.
        input_names=_graph_inputs(staging / MODEL_FILE),
        max_position_embeddings=getattr(config, "max_position_embeddings", None),
        embedding_dimension=int(model.get_embedding_dimension()),
        max_seq_length=int(model.get_max_seq_length() or 512),
        source=reference,
        variant="fp32",
        export_version=EXPORT_VERSION,
        versions={"torch": torch.__version__, "onnxruntime": _import_onnxruntime().__version__},
    )
    _write_metadata(staging, metadata)


def _graph_inputs(path: Path) -> list[str]:
    import onnx

    return [value.name for value in onnx.load(str(path), load_external_data=False).graph.input]


def _write_metadata(folder: Path, metadata: dict) -> None:
    (folder / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")


def _fuse_bert(path: Path, num_heads: int, hidden_size: int) -> None:
    """Rewrite a BERT graph with ONNX Runtime's fused attention, GELU and layer-norm
    kernels, leaving out the slow SkipLayerNormalization (:data:`DISABLED_OPTIMIZERS`)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_skip_layer_norm = False
    options.enable_bias_skip_layer_norm = False
    with _quiet_onnxruntime_tools():
        optimized = optimize_model(
            str(path), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=1, optimization_options=options
        )
    logger.debug("Fused operators: %s", optimized.get_fused_operator_statistics())
    optimized.save_model_to_file(str(path))


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


@contextmanager
def _quiet_onnxruntime_tools():
    """Silence the INFO messages of ONNX Runtime's optimizer and quantiser (dozens
    per export, several on the root logger) and the quantiser's pre-processing advice.

    ``logging.disable`` is process-wide, so INFO messages of other threads are
    dropped too for the few seconds an export takes.
    """
    previous = logging.root.manager.disable
    advice = _DropMessage("Please consider to run pre-processing")
    logging.disable(logging.INFO)
    logging.getLogger().addFilter(advice)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(advice)
        logging.disable(previous)


def _export_int8(reference: str, staging: Path) -> None:
    """Write the int8 variant of ``reference`` to ``staging``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _export_float(reference, staging)
    metadata = json.loads((staging / METADATA_FILE).read_text(encoding="utf-8"))
    float_path, smoothed_path = staging / "float.onnx", staging / "smoothed.onnx"
    os.replace(staging / MODEL_FILE, float_path)
    texts = calibration_texts()
    smoothed = smooth_activations(
        float_path, smoothed_path, _load_tokenizer(staging), metadata["input_names"], texts, max_length=metadata["max_seq_length"]
    )
    # The pre-processing that quantize_dynamic advises is shape inference and graph
    # optimisation, which the float export already had.
    with _quiet_onnxruntime_tools():
        quantize_dynamic(
            str(smoothed_path),
            str(staging / MODEL_FILE),
            per_channel=True,
            weight_type=QuantType.QInt8,
            # Shape inference cannot type the outputs of the fused kernels (a custom
            # domain), so DefaultTensorType declares them float32.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    float_path.unlink()
    smoothed_path.unlink()
    metadata.update(
        variant="int8",
        smoothing={"alpha": SMOOTHING_ALPHA, "calibration_texts": len(texts), "activations": smoothed},
    )
    _write_metadata(staging, metadata)


def calibration_texts() -> list[str]:
    """Return the texts whose activation ranges set the int8 smoothing factors.

    They are 64 short English texts written for this purpose: product reviews of
    many kinds, questions, news and instructions, one per line of
    ``mtl_hybrid/resources/calibration.txt``.
    """
    content = resources.files("mtl_hybrid").joinpath("resources", CALIBRATION_FILE).read_text(encoding="utf-8")
    return [line.strip() for line in content.splitlines() if line.strip()]


def _load_tokenizer(folder: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def smooth_activations(
    source: str | os.PathLike,
    target: str | os.PathLike,
    tokenizer,
    input_names: Sequence[str],
    texts: Sequence[str],
    *,
    alpha: float = SMOOTHING_ALPHA,
    max_length: int = 512,
    batch_size: int = 16,
) -> list[str]:
    """Write a copy of the float graph ``source`` to ``target`` with SmoothQuant's
    per-channel scaling in front of its weight matrices, and return the names of
    the activations scaled.

    Every activation made by a layer norm (:data:`LAYER_NORM_OPS`) and read by
    MatMul or Attention nodes with a constant weight matrix is scaled. With ``a``
    the largest absolute value of channel ``j`` over the tokens of ``texts``, and
    ``w`` the largest absolute weight in row ``j`` of those matrices, the factor is
    ``s = a ** alpha / w ** (1 - alpha)``, clipped to :data:`SMOOTHING_BOUNDS`. A
    new Mul node divides channel ``j`` by ``s`` for those readers only, while the
    residual connections keep the original values. Row ``j`` of each weight
    matrix is multiplied by ``s``, so the float output stays the same up to rounding.
    Texts are truncated to ``max_length`` tokens.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    weights = {initializer.name: initializer for initializer in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    weight_users: dict[str, int] = defaultdict(int)
    for node in graph.node:
        for name in node.input:
            weight_users[name] += 1

    readers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        if node.op_type not in ("MatMul", "Attention") or len(node.input) < 2:
            continue
        activation, weight = node.input[0], node.input[1]
        producer = producers.get(activation)
        from_layer_norm = producer is not None and producer.op_type in LAYER_NORM_OPS
        # A weight matrix read by another node too cannot be rescaled for this one.
        own_matrix = weight in weights and len(weights[weight].dims) == 2 and weight_users[weight] == 1
        if from_layer_norm and own_matrix:
            readers[activation].append(node)
    if not readers:
        onnx.save(model, str(target))
        return []

    ranges = _activation_ranges(model, list(readers), tokenizer, input_names, texts, max_length, batch_size)
    first_reader = {}
    for activation, nodes in readers.items():
        matrices = {node.name: numpy_helper.to_array(weights[node.input[1]]) for node in nodes}
        weight_range = np.max([np.abs(matrix).max(axis=1) for matrix in matrices.values()], axis=0)
        scale = np.maximum(ranges[activation], 1e-5) ** alpha / np.maximum(weight_range, 1e-5) ** (1 - alpha)
        scale = np.clip(scale, *SMOOTHING_BOUNDS).astype(np.float32)

        smoothed = f"{activation}_smoothed"
        inverse = f"{activation}_smoothing_inverse"
        graph.initializer.append(numpy_helper.from_array(1 / scale, inverse))
        for node in nodes:
            name = node.input[1]
            weights[name].CopyFrom(numpy_helper.from_array(matrices[node.name] * scale[:, None], name))
            node.input[0] = smoothed
        first_reader[id(nodes[0])] = helper.make_node("Mul", [activation, inverse], [smoothed], name=f"{activation}_smoothing")

    # Each Mul goes right before the first node that reads its output, which keeps
    # the node list in topological order.
    ordered = []
    for node in graph.node:
        if id(node) in first_reader:
            ordered.append(first_reader[id(node)])
        ordered.append(node)
    graph.ClearField("node")
    graph.node.extend(ordered)
    onnx.save(model, str(target))
    logger.debug("Smoothed %d activations", len(readers))
    return list(readers)


def _activation_ranges(model, names: list[str], tokenizer, input_names, texts, max_length: int, batch_size: int) -> dict[str, np.ndarray]:
    """Return the largest absolute value of each channel of the activations ``names``
    over the real (not padding) tokens of ``texts``."""
    import onnx
    from onnx import helper

    onnxruntime = _import_onnxruntime()
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(
        probe.SerializeToString(), _session_options(), providers=["CPUExecutionProvider"],
        disabled_optimizers=list(DISABLED_OPTIMIZERS),
    )
    ranges = {name: np.zeros(0, dtype=np.float32) for name in names}
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(list(texts[start : start + batch_size]), padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feed = {name: encoded[name].astype(np.int64) for name in input_names}
        real = encoded["attention_mask"].astype(bool)
        for name, values in zip(names, session.run(names, feed)):
            largest = np.abs(values[real]).max(axis=0)
            ranges[name] = largest if ranges[name].size == 0 else np.maximum(ranges[name], largest)
    return ranges


def available_cores() -> int:
    """Return the number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _session_options():
    """Return the session options of every ONNX Runtime session of this module."""
    onnxruntime = _import_onnxruntime()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = available_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxSentenceModel:
    """An exported sentence-transformers model run by ONNX Runtime on the CPU.

    It tokenizes with the model's own tokenizer, sorts the texts by token count and
    pads each batch only to its longest text, then pools and normalises the token
    embeddings as the model's Pooling and Normalize modules do.

    NOTE: the int8 variant quantises each activation tensor of a batch with one
    scale, so a text's embedding depends slightly on the other texts of its batch.

    Parameters
    ----------
    folder : str or path-like
        An export folder returned by :func:`export_onnx_model`.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        onnxruntime = _import_onnxruntime()
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        self.metadata = json.loads((self.folder / METADATA_FILE).read_text(encoding="utf-8"))
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
        self.max_seq_length = int(self.metadata["max_seq_length"])

        self.session = onnxruntime.InferenceSession(
            str(self.folder / MODEL_FILE), _session_options(), providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
        )

    def get_embedding_dimension(self) -> int:
        """Return the length of each embedding."""
        return int(self.metadata["embedding_dimension"])

    def get_max_seq_length(self) -> int:
        """Return the model's default token window."""
        return self.max_seq_length

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        max_seq_length: int | None = None,
        normalize_embeddings: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """Return the embeddings of ``texts``, an array of shape (n_texts, dimension).

        Texts longer than ``max_seq_length`` tokens (``None``: the model's window)
        are truncated.
        """
        from tqdm.auto import tqdm

        window = max_seq_length or self.max_seq_length
        encoded = self.tokenizer(list(texts), truncation="longest_first", max_length=window)
        lengths = np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)
        # Sorting by length, longest first as sentence-transformers does, keeps each batch's padding small.
        order = np.argsort(-lengths, kind="stable")
        embeddings = np.empty((len(lengths), self.get_embedding_dimension()), dtype=np.float32)

        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, desc="Batches", disable=not show_progress_bar):
            rows = order[start : start + batch_size]
            feed, mask = self._pad(encoded, rows, lengths)
            token_embeddings = self.session.run(None, feed)[0]
            embeddings[rows] = self._pool(token_embeddings, mask)

        if normalize_embeddings or self.metadata["normalize"]:
            norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
            embeddings /= np.maximum(norms, 1e-12)
        return embeddings

    def _pad(self, encoded, rows: np.ndarray, lengths: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Return the model inputs of ``rows``, right-padded to the longest of them,
        and their attention mask."""
        width = int(lengths[rows].max())
        mask = (np.arange(width)[None, :] < lengths[rows][:, None]).astype(np.int64)
        pad_values = {"input_ids": self.tokenizer.pad_token_id or 0}
        feed = {}
        for name in self.metadata["input_names"]:
            padded = np.full((len(rows), width), pad_values.get(name, 0), dtype=np.int64)
            # A tokenizer without token type ids leaves that input at zeros.
            values = encoded.get(name)
            if values is not None:
                for row, index in enumerate(rows):
                    padded[row, : lengths[index]] = values[index]
            feed[name] = padded
        return feed, mask

    def _pool(self, token_embeddings: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Pool token embeddings as sentence-transformers' Pooling module does."""
        mode = self.metadata["pooling"]
        if mode == "cls":
            return token_embeddings[:, 0]
        mask = attention_mask[:, :, None].astype(np.float32)
        if mode == "max":
            return np.where(mask > 0, token_embeddings, -1e9).max(axis=1)
        return (token_embeddings * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
