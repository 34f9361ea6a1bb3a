"""``mmrphys export-onnx``: export a model (with its weights) to ONNX with a dynamic frame axis."""

from __future__ import annotations

_EPILOG = """examples:
  mmrphys export-onnx --weights run/model.pt --out model.onnx
  mmrphys export-onnx --weights SCAMPS_MMRPhysLEF_BVP_RSP_RGBx180x72_SFSAM_Label_Epoch0.pth --out lef.onnx
  mmrphys export-onnx --weights pure-mmrphys --out pure.onnx        named weights, fetched once
  mmrphys export-onnx --model mmrphys_sef --out sef_random.onnx     (untrained weights, for tooling)"""


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
    p.set_defaults(func=run)


def run(args) -> int:
    from mmrphys import models
    from mmrphys.models.checkpoints import load_model
    from mmrphys.models.export import compare_onnx, export_onnx

    model = load_model(args.weights) if args.weights else models.create(args.model)
    path = export_onnx(model, args.out, frames=args.frames, opset=args.opset, check=not args.no_check)
    msg = f"wrote {path} (input 'input' (B, {model.in_channels}, T+1, {model.input_size}, {model.input_size})"
    msg += f"; tasks {', '.join(model.tasks)}"
    if not args.no_check:
        msg += f"; max |z(onnx) - z(torch)| = {compare_onnx(path, model, args.frames or 181):.1e}"
    print(msg + ")")
    return 0
