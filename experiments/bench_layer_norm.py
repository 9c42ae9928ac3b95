"""Benchmark: ONNX Runtime's fused SkipLayerNormalization against Add + LayerNormalization.

The residual connection of each BERT layer adds two tensors and normalises the
sum. ONNX Runtime can run that as one fused SkipLayerNormalization node, or as an
Add and a LayerNormalization node. This script builds both one-operation graphs
for a (batch, tokens, hidden) input, runs them side by side on the CPU with the
graph optimisations that ``OnnxSentenceModel`` uses, and prints the time per call
of each and their ratio. It backs ``DISABLED_OPTIMIZERS`` in
``mtl_hybrid/onnx_backend.py``.

Usage::

    python experiments/bench_layer_norm.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime
from onnx import TensorProto, helper

from mtl_hybrid.onnx_backend import DISABLED_OPTIMIZERS, available_cores


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shape", type=int, nargs=3, default=[32, 256, 384], metavar=("BATCH", "TOKENS", "HIDDEN"),
        help="shape of the two input tensors (default: 32 256 384, a batch of MiniLM at its 256-token window)",
    )
    parser.add_argument("--calls", type=int, default=50, help="timed calls per graph and round (default: 50)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each graph keeps its fastest (default: 3)")
    return parser.parse_args()


def build_graph(fused: bool, hidden: int) -> bytes:
    """Return a serialised graph computing LayerNorm(x + skip) with unit scale and zero bias."""
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "tokens", hidden]) for name in ("x", "skip")]
    output = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "tokens", hidden])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [hidden], np.ones(hidden, dtype=np.float32))
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [hidden], np.zeros(hidden, dtype=np.float32))
    if fused:
        nodes = [helper.make_node("SkipLayerNormalization", ["x", "skip", "scale", "bias"], ["y"], domain="com.microsoft", epsilon=1e-12)]
    else:
        nodes = [
            helper.make_node("Add", ["x", "skip"], ["sum"]),
            helper.make_node("LayerNormalization", ["sum", "scale", "bias"], ["y"], axis=-1, epsilon=1e-12),
        ]
    graph = helper.make_graph(nodes, "residual_layer_norm", inputs, [output], [scale, bias])
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


def main() -> None:
    args = parse_args()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = available_cores()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = {
        # Without DISABLED_OPTIMIZERS, ONNX Runtime fuses the two nodes itself.
        "SkipLayerNormalization": onnxruntime.InferenceSession(build_graph(True, args.shape[2]), options, providers=["CPUExecutionProvider"]),
        "Add + LayerNormalization": onnxruntime.InferenceSession(
            build_graph(False, args.shape[2]), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(DISABLED_OPTIMIZERS)
        ),
    }
    generator = np.random.default_rng(0)
    feed = {name: generator.standard_normal(args.shape, dtype=np.float32) for name in ("x", "skip")}
    results = {name: session.run(None, feed)[0] for name, session in sessions.items()}
    difference = float(np.abs(results["SkipLayerNormalization"] - results["Add + LayerNormalization"]).max())

    best = dict.fromkeys(sessions, float("inf"))
    for round_number in range(args.rounds):
        order = list(sessions) if round_number % 2 == 0 else list(reversed(sessions))
        for name in order:
            started = time.perf_counter()
            for _ in range(args.calls):
                sessions[name].run(None, feed)
            best[name] = min(best[name], (time.perf_counter() - started) / args.calls)

    print(f"input {tuple(args.shape)}, {options.intra_op_num_threads} threads, onnxruntime {onnxruntime.__version__}")
    for name, seconds in best.items():
        print(f"{name}: {seconds * 1e3:.2f} ms per call")
    print(f"largest difference between the two outputs: {difference:.2e}")
    print(f"fused vs unfused time: {best['SkipLayerNormalization'] / best['Add + LayerNormalization']:.1f}x")


if __name__ == "__main__":
    main()
