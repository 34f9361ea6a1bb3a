"""Write the paper's training configs (``configs/paper/``, 149 files) from the compact tables below.

Tables of the MMRPhys paper (arXiv 2505.07013) and what each config trains:

- Table 1: FactorizePhys with no attention / FSAM / GRBF / TSFM, UBFC-rPPG → PURE and → iBVP;
- Table 2: six models within iBVP, PURE and UBFC-rPPG (subject-wise 70/30);
- Tables 3 and 5: the same six models trained on iBVP, PURE, SCAMPS or UBFC-rPPG and tested on
  every other real dataset (Table 3 averages a training set's Table 5 rows);
- Table 4: BP4D+ three folds, BigSmall (RGB, T, RGBT) and MMRPhys L/M/S × (RGB, T, RGBT) ×
  (FSAM, TSFM); SCAMPS → BP4D+ for MMRPhys L/M/S (RGB).

    python scripts/gen_paper_configs.py              # (re)write configs/paper
    python scripts/gen_paper_configs.py --check      # exit 1 if any file differs from the tables
    python scripts/gen_paper_configs.py --out DIR    # write elsewhere

``tests/training/test_configs.py`` regenerates into a temporary folder and compares byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "configs" / "paper"
PAPER = "arXiv 2505.07013"
NO_DATA = "Needs the datasets; not run in this project (no data here)."

# --- Tables 2, 3 and 5: six rPPG models, BVP only, T = 160, negative Pearson ---------------------
# label: (model name, attention, model options)
RPPG_MODELS = {
    "PhysNet": ("physnet", "none", {"frames": 160}),
    "PhysFormer": ("physformer", "none", {"input_size": 72}),
    "EfficientPhys_SASN": ("efficientphys", "none", {"attention": "sasn"}),
    "FactorizePhys_FSAM": ("factorizephys", "fsam", {}),
    "FactorizePhys_TSFM": ("factorizephys", "tsfm", {}),
    "MMRPhys_TSFM": ("mmrphys_lef", "tsfm", {}),
}
WITHIN = ("ibvp", "pure", "ubfc-rppg")  # Table 2
CROSS = {  # Tables 3 and 5: training set -> test sets
    "ibvp": ("pure", "ubfc-rppg"),
    "pure": ("ibvp", "ubfc-rppg"),
    "scamps": ("ibvp", "pure", "ubfc-rppg"),
    "ubfc-rppg": ("ibvp", "pure"),
}
# SCAMPS (synthetic) trains 1 epoch; the baselines use lr 1e-4 there, MMRPhys keeps 1e-3
SCAMPS_EPOCHS, SCAMPS_BASELINE_LR = 1, 1e-4

# --- Table 1: FactorizePhys attention ablation, UBFC-rPPG -> PURE / iBVP ---------------------------
ABLATION = {"Base": "none", "FSAM": "fsam", "GRBF": "grbf", "TSFM": "tsfm"}
ABLATION_TESTS = {"PURE": "pure", "IBVP": "ibvp"}

# --- Table 4: BP4D+ multi-task (BVP + RSP), T = 180, 5 epochs; SCAMPS -> BP4D+ ------------------
FOLDS = (1, 2, 3)
SIZES = {"L": 72, "M": 36, "S": 9}
# modality label: (config modality, input channels, MMRPhys fusion)
MODALITIES = {"RGB": ("rgb", 3, "EF"), "T": ("t", 1, "EF"), "RGBT": ("rgbt", 4, "NF")}
ATTENTIONS = ("FSAM", "TSFM")
FOLD_CSV = "folds/Split{fold}_{part}_Subjects.csv"


def _doc(name: str, model: dict, data: dict, train: dict) -> dict:
    return {
        "name": name,
        "seed": 100,
        "model": model,
        "data": data,
        "train": {
            "epochs": train["epochs"],
            "batch_size": 4,
            "lr": train.get("lr", 0.001),
            "loss": train["loss"],
        },
        "eval": {"preset": "mmrphys"},
    }


def _text(rel: str, title: str, table: str, doc: dict) -> str:
    keys = sorted({e.get("key") or e["name"] for part in ("train", "test") for e in doc["data"][part]})
    data = " ".join(f"--data {k}=/path/to/{k}" for k in keys)
    head = [
        f"# {title}",
        f"# Run: mmrphys train configs/paper/{rel} {data}",
        f"# Paper: {PAPER} ({table}). {NO_DATA}",
    ]
    return "\n".join(head) + "\n" + yaml.safe_dump(doc, sort_keys=False)


def _rppg_model(label: str) -> dict:
    name, attention, options = RPPG_MODELS[label]
    return {
        "name": name,
        "tasks": ["bvp"],
        "in_channels": 3,
        "attention": attention,
        "options": dict(options),
    }


def table1() -> dict[str, str]:
    out = {}
    for test_label, test in ABLATION_TESTS.items():
        for label, attention in ABLATION.items():
            model = {
                "name": "factorizephys",
                "tasks": ["bvp"],
                "in_channels": 3,
                "attention": attention,
                "options": {},
            }
            data = {"size": 72, "chunk": 160, "train": [{"name": "ubfc-rppg"}], "test": [{"name": test}]}
            doc = _doc(
                f"t1_ubfc_{test}_factorizephys_{label.lower()}",
                model,
                data,
                {"epochs": 10, "loss": "neg_pearson"},
            )
            rel = f"table1/UBFC_{test_label}_FactorizePhys_{label}.yaml"
            out[rel] = _text(rel, f"Table 1: FactorizePhys {label}, UBFC-rPPG -> {test}", "Table 1", doc)
    return out


def table2() -> dict[str, str]:
    out = {}
    for ds in WITHIN:
        for label in RPPG_MODELS:
            data = {
                "size": 72,
                "chunk": 160,
                "train": [{"name": ds, "split": [0.0, 0.7]}],
                "test": [{"name": ds, "split": [0.7, 1.0]}],
            }
            doc = _doc(
                f"t2_{ds}_{label.lower()}", _rppg_model(label), data, {"epochs": 10, "loss": "neg_pearson"}
            )
            rel = f"table2/{ds}_{label}.yaml"
            out[rel] = _text(rel, f"Table 2: within {ds} (subjects 70/30), {label}", "Table 2", doc)
    return out


def table3_5() -> dict[str, str]:
    out = {}
    for train, tests in CROSS.items():
        for test in tests:
            for label in RPPG_MODELS:
                hp = {"epochs": 10, "loss": "neg_pearson"}
                if train == "scamps":
                    hp["epochs"] = SCAMPS_EPOCHS
                    if not label.startswith("MMRPhys"):
                        hp["lr"] = SCAMPS_BASELINE_LR
                data = {"size": 72, "chunk": 160, "train": [{"name": train}], "test": [{"name": test}]}
                doc = _doc(f"t5_{train}_{test}_{label.lower()}", _rppg_model(label), data, hp)
                rel = f"table3_5/{train}_{test}_{label}.yaml"
                out[rel] = _text(rel, f"Tables 3/5: {train} -> {test}, {label}", "Tables 3 and 5", doc)
    return out


def _mmrphys(size: str, modality: str, attention: str) -> tuple[str, dict, int]:
    _, channels, fusion = MODALITIES[modality]
    name = f"mmrphys_{size.lower()}{fusion.lower()}"
    model = {"name": name, "tasks": ["bvp", "rsp"], "in_channels": channels, "attention": attention.lower()}
    return f"MMRPhys{size}{fusion}", model, SIZES[size]


def _bp4d_data(fold: int, modality: str, size: int) -> dict:
    mod = MODALITIES[modality][0]
    return {
        "size": size,
        "chunk": 180,
        "train": [{"name": "bp4d", "modality": mod, "fold": FOLD_CSV.format(fold=fold, part="Train")}],
        "test": [{"name": "bp4d", "modality": mod, "fold": FOLD_CSV.format(fold=fold, part="Test")}],
    }


def table4() -> dict[str, str]:
    out = {}
    suffix = " (fold CSVs from rPPG-Toolbox BP4D_BigSmall_Subject_Splits)"
    for fold in FOLDS:
        for modality in MODALITIES:
            model = {
                "name": "bigsmall",
                "tasks": ["bvp", "rsp"],
                "in_channels": MODALITIES[modality][1],
                "attention": "none",
                "options": {"au": False},
            }
            doc = _doc(
                f"t4_bp4d_fold{fold}_bigsmall_{modality.lower()}",
                model,
                _bp4d_data(fold, modality, 144),
                {"epochs": 5, "loss": "mse"},
            )
            rel = f"table4/fold{fold}/BP4D_BigSmall_{modality}.yaml"
            out[rel] = _text(rel, f"Table 4: BP4D+ fold {fold}, BigSmall {modality}", "Table 4", doc)
        for size in SIZES:
            for modality in MODALITIES:
                for attention in ATTENTIONS:
                    label, model, px = _mmrphys(size, modality, attention)
                    variant = label.replace("MMRPhys", "MMRPhys-")
                    name = f"t4_bp4d_fold{fold}_{model['name']}_{modality.lower()}_{px}_{attention.lower()}"
                    doc = _doc(name, model, _bp4d_data(fold, modality, px), {"epochs": 5, "loss": "smoothl1"})
                    rel = f"table4/fold{fold}/BP4D_{label}_{modality}x180x{px}_{attention}.yaml"
                    title = f"Table 4: BP4D+ fold {fold}, {variant} {modality} {px}x{px} {attention}{suffix}"
                    out[rel] = _text(rel, title, "Table 4", doc)
    return out


def scamps_bp4d() -> dict[str, str]:
    out = {}
    for size in SIZES:
        for attention in ATTENTIONS:
            label, model, px = _mmrphys(size, "RGB", attention)
            data = {"size": px, "chunk": 180, "train": [{"name": "scamps"}], "test": [{"name": "bp4d"}]}
            doc = _doc(
                f"scamps_bp4d_{model['name']}_{px}_{attention.lower()}",
                model,
                data,
                {"epochs": SCAMPS_EPOCHS, "loss": "smoothl1"},
            )
            rel = f"scamps_bp4d/SCAMPS_BP4D_{label}_RGBx180x{px}_{attention}.yaml"
            title = f"SCAMPS -> BP4D+, {label.replace('MMRPhys', 'MMRPhys-')} {px}x{px} {attention}"
            out[rel] = _text(rel, title, "Table 4, cross-dataset", doc)
    return out


def configs() -> dict[str, str]:
    """Every paper config: ``{path relative to configs/paper: file text}``."""
    out = {}
    for part in (table1, table2, table3_5, table4, scamps_bp4d):
        out |= part()
    return dict(sorted(out.items()))


def write(folder: Path) -> list[Path]:
    written = []
    for rel, text in configs().items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def differences(folder: Path) -> list[str]:
    """Files under ``folder`` that are missing, extra or not byte-identical to the tables."""
    want = configs()
    have = {p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml")}
    bad = [f"extra: {r}" for r in sorted(have - set(want))]
    for rel, text in want.items():
        p = folder / rel
        if not p.is_file():
            bad.append(f"missing: {rel}")
        elif p.read_bytes() != text.encode():
            bad.append(f"differs: {rel}")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT), help="folder to write (default: configs/paper)")
    ap.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    a = ap.parse_args(argv)
    if a.check:
        bad = differences(Path(a.out))
        for line in bad:
            print(line)
        print(f"{len(configs())} configs, {len(bad)} difference(s)")
        return 1 if bad else 0
    print(f"wrote {len(write(Path(a.out)))} configs under {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
