"""Exported models run by onnxruntime: NumPy in, NumPy out, and no torch in the process.

:class:`OnnxPredictor` runs an ONNX file like a prepared model (:class:`mmrphys.models.Predictor`):
``predictor(x)`` with ``x`` (B, C, T+1, H, W) float32 returns ``{task: (B, T)}`` arrays. The main job
runs the shipped default weights this way (``backend="onnx"``, the default where the weights ship a
runtime twin: :func:`mmrphys.vitals.estimators.make_estimator`), because importing torch alone takes
longer than analysing a minute of video; any ONNX file (the authors' exports, ours from
``mmrphys export``) runs the same way.

Names and metadata are those :mod:`mmrphys.models.export` writes: input ``input``, outputs ``rPPG``
/ ``rRSP`` (the authors' names), and ``mmrphys.*`` metadata for what the graph cannot say (the frame
multiple T must keep, the window length and pixel scale the model was trained with).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrphys.errors import InputError, WeightsError
from mmrphys.models.spec import InputSpec

OUTPUT_NAMES = {"bvp": "rPPG", "rsp": "rRSP", "au": "AU"}  # official names; AU: BigSmall
INPUT_NAME = "input"
#: ONNX metadata keys: T must be a multiple of FRAME_MULTIPLE_KEY; the window (T+1 frames) and pixel
#: scale the model was trained with.
FRAME_MULTIPLE_KEY = "mmrphys.frame_multiple"
WINDOW_FRAMES_KEY = "mmrphys.window_frames"
PIXEL_SCALE_KEY = "mmrphys.pixel_scale"
#: The SHA-256 of the weights file an ONNX file was exported from (a shipped runtime twin's link to
#: the weights it stands for).
SOURCE_SHA256_KEY = "mmrphys.source_sha256"


def onnx_session(path, threads: int | None = None, optimize: bool = True, quiet: bool = False):
    """An onnxruntime CPU session for ``path`` (``threads`` intra-op threads; full graph optimisation;
    ``quiet``: no onnxruntime log lines). A file onnxruntime cannot load raises :class:`WeightsError`
    naming it, in one line."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    if quiet:
        so.log_severity_level = 4
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's own exception types, for files it cannot read
        first = (str(err).strip().splitlines() or [""])[0][:120]
        raise WeightsError(f"{path}: not a readable ONNX model ({type(err).__name__}: {first})") from None


def frame_multiple(session) -> int:
    """T must be a multiple of this for ``session``: our export's metadata, else 4 when it has rRSP."""
    meta = session.get_modelmeta().custom_metadata_map
    if FRAME_MULTIPLE_KEY in meta:
        return max(int(meta[FRAME_MULTIPLE_KEY]), 1)
    return 4 if OUTPUT_NAMES["rsp"] in [o.name for o in session.get_outputs()] else 1


def run_onnx(session, x, tasks=None) -> dict[str, np.ndarray]:
    """Run an exported model: (B, C, T+1, H, W) array → ``{"bvp": (B, T), "rsp": (B, T)[, "au": ...]}``
    (only ``tasks`` when given: onnxruntime then computes only what those outputs need)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    inp = session.get_inputs()[0]
    shape = inp.shape
    if x.ndim != 5 or (isinstance(shape[1], int) and x.shape[1] != shape[1]):
        raise InputError(f"ONNX model expects (B, {shape[1]}, T+1, H, W); got {x.shape}")
    step, t = frame_multiple(session), x.shape[2] - 1
    if t % step:
        why = "when RSP is estimated" if step == 4 else "for this model"
        raise InputError(
            f"T = frames - 1 = {t} must be a multiple of {step} {why}; "
            f"use {t // step * step + 1} or {t // step * step + step + 1} frames"
        )
    task_of = {o.name: task_of_output(o.name) for o in session.get_outputs()}
    names = [n for n, task in task_of.items() if tasks is None or task in tasks]
    if shape[0] == 1 and x.shape[0] > 1:  # a graph for one clip at a time (the runtime form)
        runs = [session.run(names, {inp.name: x[i:i + 1]}) for i in range(x.shape[0])]
        outs = [np.concatenate(parts) for parts in zip(*runs)]
    else:
        outs = session.run(names, {inp.name: x})
    return {task_of[n]: v for n, v in zip(names, outs)}


def task_of_output(name: str) -> str:
    """``bvp``/``rsp``/``au`` for the authors' output names; other names unchanged."""
    return {v: k for k, v in OUTPUT_NAMES.items()}.get(name, name)


def runtime_twin(entry, threads: int = 1, tasks=None) -> OnnxPredictor:
    """An :class:`OnnxPredictor` of the runtime twin a catalogue entry ships (``entry.runtime_path``).

    The twin's metadata must name the SHA-256 of the entry's weights file: a twin left behind by
    weights replaced since would run other weights, and is refused with :class:`WeightsError`."""
    predictor = OnnxPredictor(entry.runtime_path, threads=threads, tasks=tasks)
    if predictor.metadata.get(SOURCE_SHA256_KEY) != entry.sha256:
        redo = entry.runtime.get("command", "mmrphys export-onnx")
        raise WeightsError(f"{entry.runtime_path}: this runtime twin was not exported from {entry.file} (its "
                           f"SHA-256 differs); re-export it: {redo} (or run with --backend eager)")
    return predictor


class OnnxPredictor:
    """An ONNX export run like a prepared model: ``predictor(x)`` with ``x`` (B, C, T+1, H, W) float32
    returns ``{task: (B, T)}`` float32 arrays (see the module docstring).

    onnxruntime on the CPU with ``threads`` intra-op threads (a session setting: nothing
    process-wide changes). The window comes from the graph's input shape (C, H, W fixed) and our
    metadata (T+1 = 181 when neither says: the authors trained on 181 frames); outputs named as the
    authors' exports (``rPPG``, ``rRSP``) become ``bvp``/``rsp``; ``tasks`` limits the outputs
    computed (default: all). The networks these files hold normalise each clip themselves.
    """

    backend = "onnx"
    module = None
    compiled_shape = None

    def __init__(self, path, threads: int = 1, tasks=None):
        path = Path(path)
        self.path = path
        self.session = onnx_session(path, threads=threads)
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 5 or not all(isinstance(shape[i], int) for i in (1, 3, 4)) or shape[3] != shape[4]:
            raise WeightsError(f"{path}: an ONNX model for the main job takes (B, C, T+1, S, S) face crops "
                               f"with fixed C and S; this one takes {shape}")
        own = tuple(task_of_output(o.name) for o in self.session.get_outputs())
        if "bvp" not in own:
            raise WeightsError(f"{path}: the ONNX model has no pulse output ({OUTPUT_NAMES['bvp']!r}); "
                               f"its outputs are {[o.name for o in self.session.get_outputs()]}")
        self.tasks = own if tasks is None else tuple(t for t in own if t in tasks)
        meta = self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        frames = shape[2] if isinstance(shape[2], int) else int(meta.get(WINDOW_FRAMES_KEY, 181))
        self.spec = InputSpec(size=int(shape[3]), frames=int(frames),
                              frame_multiple=frame_multiple(self.session), in_channels=int(shape[1]),
                              pixel_scale=float(meta.get(PIXEL_SCALE_KEY, 1.0)))

    def __call__(self, x) -> dict[str, np.ndarray]:
        if hasattr(x, "detach"):  # a torch tensor (torch is imported already where one exists)
            x = x.detach().cpu().numpy()
        return run_onnx(self.session, x, self.tasks)
