"""mmrphys: contactless heart rate and breathing from face video.

Data flows through one sub-package per stage:
video -> faces -> tensors -> models -> signals -> vitals (results, reports).
"""

__version__ = "0.1.0"

from mmrphys.errors import ConfigError, InputError, MmrphysError, WeightsError  # noqa: E402

__all__ = ["__version__", "MmrphysError", "InputError", "ConfigError", "WeightsError", "estimate",
           "estimate_many"]


def estimate(*args, **kwargs):
    """Estimate heart rate, breathing rate and waveforms from a video or frames.

    See :func:`mmrphys.vitals.estimate.estimate` for the arguments.
    """
    from mmrphys.vitals.estimate import estimate as _estimate

    return _estimate(*args, **kwargs)


def estimate_many(*args, **kwargs):
    """Estimate every video of a list of files and folders, with a summary table; resumable.

    See :func:`mmrphys.vitals.batch.estimate_many` for the arguments.
    """
    from mmrphys.vitals.batch import estimate_many as _estimate_many

    return _estimate_many(*args, **kwargs)
