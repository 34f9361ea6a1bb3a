"""Per-layer CPU time of MMRPhys-LEF's 3×3×3 convs in each conv engine (the table in docs/benchmarks.md).

Engines: oneDNN 3D conv on channels-last (NDHWC) tensors (what the eager backend of ``models.prepare`` uses);
oneDNN Conv2d over the three temporally shifted frames stacked on channels (time-major rewrite);
onnxruntime Conv3d; onnxruntime Conv2d on the stacked frames (its blocked NCHWc kernels). The
onnxruntime graphs are Conv→Tanh (fused by onnxruntime); the PyTorch times are the conv alone.
The stacked variants are given their stacked input: the 3×-wide copy that builds it is not timed.
Minimum process CPU time of ``--runs`` calls, one thread, with glibc keeping freed memory
(:func:`mmrphys.cli.process.retain_freed_memory`, as ``mmrphys estimate`` sets it; without it
every 56 MB output of the first layer is a fresh ``mmap`` whose ~14k page faults add ~20 ms).

    python benchmarks/conv_engines.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

LAYERS = [(3, 16, 180, 72), (8, 12, 180, 35), (12, 16, 180, 33), (16, 16, 90, 34)]  # C_in, C_out, T, H=W


class _Conv3dTanh(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return torch.tanh(F.conv3d(x, self.w, None, 1, (1, 0, 0)))


class _Conv2dTanh(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return torch.tanh(F.conv2d(x, self.w))


def cpu_ms(fn, runs: int) -> float:
    fn()
    best = float("inf")
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return 1000 * best


def ort_session(module, x, path: Path):
    import onnxruntime as ort

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), input_names=["x"], opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--no-retain",
        action="store_true",
        help="leave glibc's default (a fresh mmap, page faults and all, for every output over 32 MB)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if not args.no_retain:
        from mmrphys.cli.process import retain_freed_memory

        retain_freed_memory()  # as mmrphys estimate does: reuse freed memory instead of faulting in pages
    tmp = Path(tempfile.mkdtemp(prefix="mmrphys-conv-"))
    print(
        "| layer (C_in→C_out, T, H=W) | oneDNN 3D NDHWC | oneDNN Conv2d, 3 frames stacked | ORT Conv3d "
        "| ORT Conv2d, 3 frames stacked (NCHWc) |\n|---|---:|---:|---:|---:|"
    )
    gen = torch.Generator().manual_seed(0)
    for ci, co, t, s in LAYERS:
        w3 = torch.randn(co, ci, 3, 3, 3, generator=gen) * 0.1
        x3 = torch.randn(1, ci, t, s, s, generator=gen)
        # time-major stacked input (T, 3·C_in, H, W) and weight (C_out, 3·C_in, 3, 3): same maths
        x2 = F.pad(x3[0].transpose(0, 1), (0, 0, 0, 0, 0, 0, 1, 1))
        x2 = torch.cat([x2[:-2], x2[1:-1], x2[2:]], 1)
        w2 = w3.transpose(1, 2).reshape(co, 3 * ci, 3, 3)
        with torch.inference_mode():
            ref = F.conv3d(x3, w3, None, 1, (1, 0, 0))[0].transpose(0, 1)
            assert float((F.conv2d(x2, w2) - ref).abs().max()) < 1e-4
            cl3, wl3 = (
                x3.contiguous(memory_format=torch.channels_last_3d),
                w3.contiguous(memory_format=torch.channels_last_3d),
            )
            cl2, wl2 = (
                x2.contiguous(memory_format=torch.channels_last),
                w2.contiguous(memory_format=torch.channels_last),
            )
            times = [
                cpu_ms(lambda a=cl3, b=wl3: F.conv3d(a, b, None, 1, (1, 0, 0)), args.runs),
                cpu_ms(lambda a=cl2, b=wl2: F.conv2d(a, b), args.runs),
            ]
        for module, x, name in ((_Conv3dTanh(w3), x3, "c3"), (_Conv2dTanh(w2), x2, "c2")):
            sess = ort_session(module, x, tmp / f"{name}.onnx")
            xn = x.numpy()
            times.append(cpu_ms(lambda s=sess, a=xn: s.run(None, {"x": a}), args.runs))
        print(f"| {ci}→{co}, {t}, {s} | " + " | ".join(f"{v:.1f}" for v in times) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
