"""The main job's start-up stays light: SciPy, torch and matplotlib load only when needed."""

import subprocess
import sys

from mmrphys.signals.unsupervised import METHODS
from mmrphys.vitals.estimate import UNSUPERVISED_METHODS


def test_method_names_match_the_signal_stage():
    assert sorted(UNSUPERVISED_METHODS) == sorted(METHODS)


def test_importing_the_main_job_and_cli_loads_no_heavy_modules():
    code = ("import sys, mmrphys.vitals.estimate, mmrphys.faces.skin, mmrphys.signals;"
            "from mmrphys.cli import estimate;"
            "print(*[m in sys.modules for m in ('scipy', 'torch', 'matplotlib')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
