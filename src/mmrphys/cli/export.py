"""``mmrphys export-onnx``: export a model (with its weights) to ONNX with a dynamic frame axis."""

from __future__ import annotations

_EPILOG = """examples:
  mmrphys export-onnx --weights run/model.pt --out model.onnx
  mmrphys export-onnx --weights SCAMPS_MMRPhysLEF_BVP_RSP_RGBx180x72_SFSAM_Label_Epoch0.pth --out lef.onnx
  mmrphys export-onnx --weights pure-mmrphys --out pure.onnx        named weights, fetched once
  mmrphys export-onnx --model mmrphys_sef --out sef_random.onnx     (untrained weights, for tooling)
  mmrphys export-onnx --weights default --tasks bvp --runtime \
      --out src/mmrphys/weights/mmrphys_sef_ubfc8_reanim.onnx        the default weights' runtime twin

--runtime writes the form the main job runs through onnxruntime (each 3-D convolution as one 2-D
convolution over its frames stacked as channels: the same sums, ~1.4x faster on a CPU), with the batch
fixed at 1. Every export records the SHA-256 of the weights file it came from (metadata
mmrphys.source_sha256); the main job uses a shipped twin only while that matches its weights file."""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser(
        "export-onnx",
        aliases=["export"],
        help="export a model to ONNX (any number of frames)",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="weights file (ours or the authors' .pth) or named weights "
                     "('mmrphys weights list'; a remote one is downloaded once)")
    src.add_argument("--model", help="registered model name, exported with untrained weights")
    p.add_argument("--out", required=True, help="output .onnx path")
    p.add_argument("--frames", type=int, default=None, help="frames of the tracing example (default 181)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime vs PyTorch check")
    p.add_argument("--tasks", nargs="+", choices=("bvp", "rsp"), default=None,
                   help="export only these outputs (MMRPhys: the other branches are left out)")
    p.add_argument("--runtime", action="store_true",
                   help="the runtime form: 3-D convolutions as 2-D ones, batch 1 (see below)")
    p.set_defaults(func=run)


def run(args) -> int:
    from mmrphys import models
    from mmrphys.errors import ConfigError
    from mmrphys.models.checkpoints import load_model
    from mmrphys.models.export import compare_onnx, export_onnx
    from mmrphys.models.runtime import SOURCE_SHA256_KEY
    from mmrphys.models.weights import file_sha256, resolve_weights

    model = load_model(args.weights) if args.weights else models.create(args.model)
    if args.tasks:
        if not hasattr(model, "keep_tasks"):
            raise ConfigError(f"--tasks: {type(model).__name__} computes all its outputs together")
        model.keep_tasks(args.tasks)
    meta = {}
    if args.weights:  # provenance: the weights file this graph holds
        meta[SOURCE_SHA256_KEY] = file_sha256(resolve_weights(args.weights, download=True))
    path = export_onnx(model, args.out, frames=args.frames, opset=args.opset, check=not args.no_check,
                       conv2d=args.runtime, metadata=meta)
    size, batch = model.input_size, 1 if args.runtime else "B"
    msg = f"wrote {path} (input 'input' ({batch}, {model.in_channels}, T+1, {size}, {size})"
    msg += f"; tasks {', '.join(model.tasks)}"
    if not args.no_check:
        msg += f"; max |z(onnx) - z(torch)| = {compare_onnx(path, model, args.frames or 181):.1e}"
    print(msg + ")")
    return 0
