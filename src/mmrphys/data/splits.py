"""Subject-wise, deterministic splits: fractions, explicit lists, k-fold, BP4D+ fold CSVs, cross-dataset.

Everything sorts subject ids first (natural order), so a split never depends on filesystem order, and
never puts one subject's recordings on both sides. Functions accept recordings (anything with a
``subject_id``) or cache manifests' entries and return lists of the same items.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mmrphys.data.base import natural_key, require_file
from mmrphys.errors import ConfigError, InputError


def _subject(item) -> str:
    return str(item["subject_id"] if isinstance(item, dict) else item.subject_id)


def subjects(items) -> list[str]:
    """Unique subject ids of ``items``, in natural sorted order."""
    return sorted({_subject(r) for r in items}, key=natural_key)


def select_subjects(items, subject_ids) -> list:
    """The items whose subject is in ``subject_ids`` (order of ``items`` kept); unknown ids raise."""
    wanted = {str(s) for s in subject_ids}
    missing = wanted - set(subjects(items))
    if missing:
        raise ConfigError(f"subjects not in the data: {', '.join(sorted(missing, key=natural_key))}")
    return [r for r in items if _subject(r) in wanted]


def by_fraction(items, begin: float = 0.0, end: float = 1.0) -> list:
    """Items of the subjects in ``[begin, end)`` of the sorted subject list (the toolbox's BEGIN/END)."""
    if not 0.0 <= begin < end <= 1.0:
        raise ConfigError(f"need 0 <= begin < end <= 1, got begin={begin}, end={end}")
    subs = subjects(items)
    lo, hi = int(round(begin * len(subs))), int(round(end * len(subs)))
    return select_subjects(items, subs[lo:hi])


def split_fractions(items, fractions=(0.8, 0.2), names=("train", "test")) -> dict[str, list]:
    """Consecutive subject-wise parts, e.g. ``(0.7, 0.1, 0.2)`` → train/val/test; fractions sum to 1."""
    if len(fractions) != len(names) or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ConfigError(f"fractions {fractions} must be non-negative, sum to 1 and match names {names}")
    out, edge = {}, 0.0
    subs = subjects(items)
    for name, f in zip(names, fractions):
        lo, hi = int(round(edge * len(subs))), int(round((edge + f) * len(subs)))
        out[name] = select_subjects(items, subs[lo:hi]) if hi > lo else []
        edge += f
    return out


def kfold(items, k: int, fold: int) -> tuple[list, list]:
    """``(train, test)`` of fold ``fold`` (0-based) of ``k`` contiguous subject folds."""
    subs = subjects(items)
    if not 2 <= k <= len(subs):
        raise ConfigError(f"k-fold needs 2 <= k <= {len(subs)} subjects, got k={k}")
    if not 0 <= fold < k:
        raise ConfigError(f"fold must be in 0..{k - 1}, got {fold}")
    bounds = [round(i * len(subs) / k) for i in range(k + 1)]
    test = set(subs[bounds[fold] : bounds[fold + 1]])
    return [r for r in items if _subject(r) not in test], [r for r in items if _subject(r) in test]


def read_subject_list(path) -> list[str]:
    """Subject ids from a CSV/text file: one per line or comma-separated; a header row is skipped."""
    p = require_file(path, "subject list")
    ids = []
    with open(p, newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            ids.extend(c.strip() for c in row if c.strip())
    if ids and ids[0].lower() in ("subject", "subjects", "subject_id", "id", "sub", "0"):
        ids = ids[1:]
    if not ids:
        raise InputError(f"{p}: no subject ids")
    return ids


def bp4d_fold(fold_dir, fold: int) -> tuple[list[str], list[str]]:
    """BP4D+ BigSmall fold lists ``Split{fold}_Train_Subjects.csv`` / ``..._Test_...``: (train, test) ids."""
    d = Path(fold_dir)
    if fold not in (1, 2, 3):
        raise ConfigError(f"BP4D+ folds are 1, 2 and 3, got {fold}")
    return (
        read_subject_list(d / f"Split{fold}_Train_Subjects.csv"),
        read_subject_list(d / f"Split{fold}_Test_Subjects.csv"),
    )


def cross_dataset(train_items, test_items, val_fraction: float = 0.2) -> dict[str, list]:
    """Train on dataset A (its last ``val_fraction`` of subjects held out for validation), test on B."""
    parts = (
        split_fractions(train_items, (1.0 - val_fraction, val_fraction), ("train", "val"))
        if val_fraction > 0
        else {"train": list(train_items), "val": []}
    )
    return {"train": parts["train"], "val": parts["val"], "test": list(test_items)}
