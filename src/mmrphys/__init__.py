"""mmrphys: contactless heart rate and breathing from face video.

Data flows through one sub-package per stage:
video -> faces -> tensors -> models -> signals -> vitals (results, reports).
"""

__version__ = "0.1.0"

from mmrphys.errors import ConfigError, InputError, MmrphysError, WeightsError  # noqa: E402

__all__ = ["__version__", "MmrphysError", "InputError", "ConfigError", "WeightsError", "Stream", "estimate"]


def estimate(*args, **kwargs):
    """Estimate heart rate, breathing rate and waveforms from a video or frames.

    See :func:`mmrphys.vitals.estimate.estimate` for the arguments.
    """
    from mmrphys.vitals.estimate import estimate as _estimate

    return _estimate(*args, **kwargs)


def __getattr__(name: str):
    # mmrphys.Stream (mmrphys.vitals.stream.Stream) is imported on first use: `import mmrphys` stays light
    if name == "Stream":
        from mmrphys.vitals.stream import Stream

        return Stream
    raise AttributeError(f"module 'mmrphys' has no attribute {name!r}")
