"""Shipped configs: the paper's are exactly what scripts/gen_paper_configs.py writes from its tables, the
tables match the paper, and every config validates and builds its model."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

from mmrphys.training.config import load_config
from mmrphys.training.runner import build_model

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
SHARED = Path(os.environ.get("MMRPHYS_SHARED", ROOT.parent / "shared"))
PAPER_TXT = SHARED / "docs" / "PAPER_MMRPhys.txt"
DATASETS = {"iBVP": "ibvp", "PURE": "pure", "UBFC-rPPG": "ubfc-rppg", "SCAMPS": "scamps"}


def _generator():
    script = ROOT / "scripts" / "gen_paper_configs.py"
    spec = importlib.util.spec_from_file_location("gen_paper_configs", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _generator()


def test_paper_configs_are_generated_byte_for_byte(tmp_path):
    written = GEN.write(tmp_path)
    assert len(written) == 149  # 8 (T1) + 18 (T2) + 54 (T3/5) + 63 (T4) + 6 (SCAMPS -> BP4D+)
    shipped = sorted(
        p.relative_to(ROOT / "configs" / "paper").as_posix()
        for p in (ROOT / "configs" / "paper").rglob("*.yaml")
    )
    assert shipped == sorted(p.relative_to(tmp_path).as_posix() for p in written)
    for p in written:
        rel = p.relative_to(tmp_path)
        assert p.read_bytes() == (ROOT / "configs" / "paper" / rel).read_bytes(), rel
    assert GEN.differences(ROOT / "configs" / "paper") == []


def test_generator_check_mode_finds_a_changed_file(tmp_path):
    GEN.write(tmp_path)
    victim = tmp_path / "table2" / "pure_PhysNet.yaml"
    victim.write_text(victim.read_text().replace("epochs: 10", "epochs: 11"))
    (tmp_path / "table2" / "stray.yaml").write_text("name: x\n")
    assert GEN.differences(tmp_path) == ["extra: table2/stray.yaml", "differs: table2/pure_PhysNet.yaml"]
    assert GEN.main(["--check", "--out", str(tmp_path)]) == 1


def _section(text: str, start: str, end: str) -> str:
    i = text.index(start)
    return text[i : text.index(end, i + len(start))]


def _model_label(line: str) -> str | None:
    m = re.match(r"^(PhysNet|PhysFormer|E.{0,3}cientPhys|FactorizePhys|MMRPhys)\s+(\S+)", line)
    if not m:
        return None
    name = "EfficientPhys" if m.group(1).endswith("cientPhys") else m.group(1)
    if name in ("PhysNet", "PhysFormer"):
        return name
    return f"{name}_{m.group(2)}"


@pytest.mark.skipif(not PAPER_TXT.is_file(), reason="paper text (../shared/docs) not available")
def test_tables_match_the_paper():
    paper = PAPER_TXT.read_text(errors="replace")
    # Table 1: UBFC-rPPG -> PURE and -> iBVP; NA / None / GRBF / Target Signal = Base / FSAM / GRBF / TSFM
    t1 = _section(paper, " Table 1:", "AVG: Average")
    tested = {DATASETS[b] for b in re.findall(r"UBFC-rPPG (PURE|iBVP)", t1)}
    assert tested == set(GEN.ABLATION_TESTS.values())
    constraints = {"- NA": "none", "X None": "fsam", "X GRBF": "grbf", "X Target Signal": "tsfm"}
    for paper_name, ours in constraints.items():
        assert t1.count(paper_name + " ") == 2 and ours in GEN.ABLATION.values(), paper_name
    # Table 2: six models within three datasets
    t2 = _section(paper, " Table 2:", "FSAM: Factorized")
    within = re.findall(r"(\S+) Dataset \[\d+\], Subject-wise", t2)
    assert tuple(sorted(DATASETS[d] for d in within)) == GEN.WITHIN
    rows = [_model_label(ln) for ln in t2.splitlines()]
    assert [r for r in rows if r] == list(GEN.RPPG_MODELS) * 3
    # Table 3: training set -> test sets
    t3 = _section(paper, " Table 3:", "FSAM: Factorized")
    blocks = re.findall(r"Train:\s*\*\s*(\S+)\s*Test:\s*((?:\*\s*[\w-]+,?\s*)+)", t3)
    cross = {
        DATASETS[tr]: tuple(sorted(DATASETS[t] for t in re.findall(r"\*\s*([\w-]+)", te)))
        for tr, te in blocks
    }
    assert cross == {k: tuple(sorted(v)) for k, v in GEN.CROSS.items()}
    assert [r for r in (_model_label(ln) for ln in t3.splitlines()) if r] == list(GEN.RPPG_MODELS) * 4
    # Table 5: per test set, the training sets and the same six models
    t5 = paper[paper.index(" Table 5:") :]
    pairs = set()
    sections = r"Performance Evaluation on (\S+) Dataset \[\d+\](.*?)(?=Performance Evaluation|$)"
    for test, body in re.findall(sections, t5, flags=re.S):
        for train in re.findall(r"^(iBVP|PURE|SCAMPS|UBFC-rPPG)\s*$", body, flags=re.M):
            pairs.add((DATASETS[train], DATASETS[test]))
        assert [r for r in (_model_label(ln) for ln in body.splitlines()) if r] == list(GEN.RPPG_MODELS) * 3
    assert pairs == {(tr, te) for tr, tests in GEN.CROSS.items() for te in tests}
    # Table 4 (an image in the text): three BP4D+ folds, BigSmall and MMRPhys with FSAM and TSFM,
    # 9x9, 36x36 and 72x72 inputs, RGB and thermal; SCAMPS -> BP4D+
    assert "Three-fold validation is performed using the\nBP4D+" in paper and len(GEN.FOLDS) == 3
    assert "BigSmall, MM-\nRPhys trained with FSAM as well as with TSFM" in paper
    assert set(GEN.ATTENTIONS) == {"FSAM", "TSFM"} and sorted(GEN.SIZES.values()) == [9, 36, 72]
    for px in (9, 36, 72):
        assert re.search(rf"{px} \S {px}", paper), px
    assert "trained\non SCAMPS dataset [30] and tested on BP4D+" in paper


def test_all_configs_validate_and_build():
    names = {p.parent.name for p in CONFIGS} | {p.parent.parent.name for p in CONFIGS}
    assert {"table1", "table2", "table3_5", "table4", "scamps_bp4d", "default", "ablation"} <= names
    seen = set()
    for path in CONFIGS:
        cfg = load_config(path)
        m = cfg["model"]
        key = (
            m["name"],
            tuple(m["tasks"]),
            m["in_channels"],
            m["attention"],
            tuple(sorted(m["options"].items())),
        )
        if key in seen:
            continue
        seen.add(key)
        try:
            net = build_model(cfg)
        except Exception as err:  # pragma: no cover - the message names the config
            pytest.fail(f"{path}: {err}")
        assert set(net.tasks) >= set(m["tasks"]), path
