"""Inference engines: a network's logits through MindSpore itself, ONNX Runtime or OpenVINO.

:class:`InferenceEngine` wraps an eval-mode network. With an engine other than ``mindspore`` it
exports the network to ONNX (visionzoo's own export, :func:`visionzoo.tasks.export.export_network`)
once per input shape, runs the file in the engine, and checks the engine's logits on the first batch
of every shape against the native MindSpore forward (largest difference at most
:data:`TOLERANCE` of the logits' scale, the largest absolute native logit).

* ``engine="auto"`` (the default) tries the first installed engine of :data:`PREFERENCE` on CPU
  (MindSpore itself on GPU/Ascend). Once its logits match, it times two more calls of the engine
  and of the native forward at that shape and keeps the faster for that shape (ONNX Runtime wins at
  small batches; visionzoo's fast convolutions win on vgg16_bn_cifar at batch 128). A failed export,
  session or parity check logs a warning and falls back to the native forward for the rest of the run.
* An engine named explicitly never falls back: a failure raises :class:`~visionzoo.errors.VisionZooError`.

Exports are cached under ``files.cache_root("onnx")``, named by a digest of the network's weights
(every parameter's name, shape, dtype and bytes), its cell structure (amp wrappers included), the
input shape, and the versions of MindSpore, visionzoo and the engine. Files are written under a
temporary name and renamed, so processes sharing the cache never read half a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..errors import ConfigError, VisionZooError
from ..files import cache_root

__all__ = [
    "ENGINES",
    "PREFERENCE",
    "TOLERANCE",
    "InferenceEngine",
    "available_engines",
    "choose_engine",
    "engine_version",
    "native_logits",
    "compiled_forward",
    "network_digest",
]

_logger = logging.getLogger(__name__)

#: Engines an ``engine`` option accepts (besides ``auto``).
ENGINES: Tuple[str, ...] = ("mindspore", "onnxruntime", "openvino")
#: The engine ``auto`` tries on CPU, first installed first (it then races MindSpore per input shape).
#: OpenVINO is left out: in no measured case was it the fastest of the three
#: (benchmarks/results/2026-12-06T*_inference_engines.json, AMD EPYC AVX-512, 2 threads).
PREFERENCE: Tuple[str, ...] = ("onnxruntime", "mindspore")
#: Largest |engine - native| allowed, as a fraction of the largest |native logit|.
TOLERANCE = 1e-4


def engine_version(name: str) -> Optional[str]:
    """The installed version of engine ``name`` (or any package), None when it is not installed.

    Read from the package metadata, without importing it: importing openvino starts its telemetry.
    """
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def available_engines() -> List[str]:
    """The engines installed here, in :data:`ENGINES` order (``mindspore`` always)."""
    return [name for name in ENGINES if engine_version(name) is not None]


def choose_engine(requested: str = "auto", device_target: str = "CPU") -> str:
    """The engine to run: ``requested``, or with ``auto`` the first installed of :data:`PREFERENCE`
    (``mindspore`` off CPU). An unknown or uninstalled engine raises ConfigError."""
    name = str(requested or "auto").lower()
    if name == "auto":
        if device_target != "CPU":
            return "mindspore"
        return next(e for e in PREFERENCE if engine_version(e) is not None)
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {requested!r}; allowed: auto, {', '.join(ENGINES)}")
    if name != "mindspore" and device_target != "CPU":
        raise ConfigError(f"engine {name} runs on CPU only, this run uses {device_target}", hint="use engine mindspore")
    if engine_version(name) is None:
        raise ConfigError(f"engine {name} is not installed", hint=f"pip install {name}, or use engine auto")
    return name


def native_logits(network: Any, batch: np.ndarray) -> np.ndarray:
    """float32 N x C x H x W -> float32 N x classes through the MindSpore network (its main head);
    ``network`` may also be a compiled forward (see :func:`compiled_forward`)."""
    import mindspore as ms

    out = network(ms.Tensor(np.ascontiguousarray(batch, dtype=np.float32)))
    if isinstance(out, (tuple, list)):  # aux heads: the main logits come first
        out = out[0]
    return out.asnumpy().astype(np.float32)


def compiled_forward(network: Any) -> Any:
    """The network's forward as one compiled graph: the network itself in graph mode, ``ms.jit`` of its
    ``construct`` in PyNative mode (op-by-op dispatch measured up to twice as slow at batch 1)."""
    import mindspore as ms

    if ms.get_context("mode") == ms.GRAPH_MODE:
        return network
    return ms.jit(network.construct)


def network_digest(network: Any) -> str:
    """SHA-256 of a network's weights (name, shape, dtype, bytes of every parameter) and cell structure."""
    digest = hashlib.sha256()
    for name, cell in network.cells_and_names():  # amp wrappers change the graph, not the weights
        digest.update(f"{name}:{type(cell).__name__};".encode())
    for param in sorted(network.get_parameters(), key=lambda p: p.name):
        value = param.asnumpy()
        digest.update(f"{param.name}:{value.shape}:{value.dtype};".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _onnxruntime_session(path: str) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def _openvino_session(path: str) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov

    # float32: on CPUs with bf16 instructions OpenVINO would otherwise run bf16, far from the native logits
    # (and 2026.4 cannot compile the export's MaxPool in bf16 on an AMD EPYC AVX-512 host)
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    compiled = ov.Core().compile_model(path, "CPU", config)
    request = compiled.create_infer_request()
    return lambda batch: np.array(request.infer({0: batch})[0])


_SESSIONS: Dict[str, Callable[[str], Callable[[np.ndarray], np.ndarray]]] = {
    "onnxruntime": _onnxruntime_session,
    "openvino": _openvino_session,
}


def _first_words(error: BaseException, limit: int = 240) -> str:
    """An engine's (often multi-line) error as one line of at most ``limit`` characters."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _visionzoo_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("visionzoo")
    except metadata.PackageNotFoundError:  # a source checkout on PYTHONPATH
        return "source"


class EngineFailed(VisionZooError, RuntimeError):
    """An engine could not export, load or match the native forward (only raised when asked for by name)."""


class InferenceEngine:
    """Logits of an eval-mode network through an engine (see the module docstring for the rules).

    Args:
        network: the MindSpore network (eval mode; it is also the parity reference and the fallback).
        engine: ``auto`` or one of :data:`ENGINES`.
        device_target: the run's device (engines other than MindSpore run on CPU).
    """

    def __init__(self, network: Any, engine: str = "auto", device_target: str = "CPU") -> None:
        self.network = network
        self.requested = str(engine or "auto").lower()
        self.name = choose_engine(self.requested, device_target)
        self._runs: Dict[Tuple[int, ...], Callable[[np.ndarray], np.ndarray]] = {}
        self.choices: Dict[Tuple[int, ...], str] = {}  # input shape -> the engine that runs it
        self._digest: Optional[str] = None
        self._native: Any = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """float32 N x C x H x W (already transformed) -> float32 N x classes logits."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self.name == "mindspore":
            return native_logits(self.native(), batch)
        run = self._runs.get(batch.shape)
        if run is None:
            return self._first_batch(batch)
        return np.asarray(run(batch), dtype=np.float32)

    def native(self) -> Any:
        """The native forward, compiled once (:func:`compiled_forward`)."""
        if self._native is None:
            self._native = compiled_forward(self.network)
        return self._native

    def export_file(self, shape: Tuple[int, ...]) -> str:
        """The cached ONNX export of the network for ``shape`` (written on first use)."""
        from .export import export_network

        if self._digest is None:
            self._digest = network_digest(self.network)
        import mindspore as ms

        versions = f"ms {ms.__version__}|vz {_visionzoo_version()}|{self.name} {engine_version(self.name)}"
        key = hashlib.sha256(f"{self._digest}|{tuple(shape)}|{versions}".encode()).hexdigest()[:32]
        path = str(cache_root("onnx") / f"{key}.onnx")
        if not os.path.isfile(path):
            export_network(self.network, path, "ONNX", shape)
        return path

    def used(self) -> List[str]:
        """The engines that ran so far, in order of first use (before any batch: the one to try)."""
        return list(dict.fromkeys(self.choices.values())) or [self.name]

    def _first_batch(self, batch: np.ndarray) -> np.ndarray:
        """Export and load for this shape, run, check against the native forward; under ``auto`` keep
        the faster of the engine and MindSpore for this shape."""
        shape = batch.shape
        reference = native_logits(self.native(), batch)
        try:
            run = _SESSIONS[self.name](self.export_file(shape))
            out = np.asarray(run(batch), dtype=np.float32)
            scale = float(np.abs(reference).max()) or 1.0
            diff = float(np.abs(out - reference).max()) if out.shape == reference.shape else float("inf")
            if not diff <= TOLERANCE * scale:
                raise EngineFailed(
                    f"engine {self.name}'s logits differ from MindSpore's by {diff:.3g} "
                    f"(allowed {TOLERANCE:g} of their scale {scale:.3g}) at input {list(shape)}",
                    hint="use engine mindspore",
                )
        except Exception as e:  # noqa: BLE001  any engine failure: fall back (auto) or report (named)
            if self.requested != "auto":
                if isinstance(e, VisionZooError):
                    raise
                raise EngineFailed(
                    f"engine {self.name} failed at input {list(shape)}: {type(e).__name__}: {_first_words(e)}",
                    hint="use engine mindspore or auto",
                ) from e
            _logger.warning("engine %s not used, MindSpore runs the network: %s", self.name, e)
            self.name = "mindspore"
            return reference
        _logger.info("engine %s matches at input %s (max |diff| %.3g, scale %.3g)", self.name, list(shape), diff, scale)
        chosen = self.name
        if self.requested == "auto":
            native_s, engine_s = _race(lambda: native_logits(self.native(), batch), lambda: run(batch))
            _logger.info(
                "input %s: MindSpore %.2f ms, %s %.2f ms per batch", list(shape), 1e3 * native_s, chosen, 1e3 * engine_s
            )
            if native_s < engine_s:
                chosen, out = "mindspore", reference
                run = lambda b: native_logits(self.native(), b)  # noqa: E731
        self.choices[shape] = chosen
        self._runs[shape] = run
        return out


def _race(first: Callable[[], Any], second: Callable[[], Any], rounds: int = 2) -> Tuple[float, float]:
    """The best of ``rounds`` timed calls of each, in turns (both already warm)."""
    import time

    best = [float("inf"), float("inf")]
    for _ in range(rounds):
        for k, fn in enumerate((first, second)):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best[0], best[1]


def engine_eval_step(engine: str, device_target: str) -> Callable[[Any, int], Optional[Callable[..., Any]]]:
    """For :func:`~visionzoo.tasks.validate.run_validation`: ``factory(network, topk)`` gives an evaluation
    step (``step(images, labels) -> (loss sum, top-1 hits, top-k hits)``, as
    :class:`~visionzoo.engine.evaluate.EvalStep`) whose forward runs through ``engine``; or None when
    that engine is MindSpore itself (evaluate then compiles its own step over the network)."""
    import mindspore as ms
    from mindspore import nn

    from ..engine.evaluate import EvalStep

    def factory(network: Any, topk: int) -> Optional[Callable[..., Any]]:
        runner = InferenceEngine(network, engine, device_target)
        if runner.name == "mindspore":
            return None
        metrics = EvalStep(nn.Identity(), topk)  # the same loss and top-k arithmetic, over given logits

        def step(images: Any, labels: Any) -> Any:
            return metrics(ms.Tensor(runner(images.asnumpy())), labels)

        return step

    return factory
