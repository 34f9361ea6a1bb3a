"""mmrphys: contactless heart rate and breathing from face video.

Data flows through one sub-package per stage:
video -> faces -> tensors -> models -> signals -> vitals (results, reports).
"""

__version__ = "0.1.0"

from mmrphys.errors import ConfigError, InputError, MmrphysError, WeightsError  # noqa: E402

__all__ = ["__version__", "MmrphysError", "InputError", "ConfigError", "WeightsError", "Stream", "estimate",
           "estimate_many"]


def estimate(source=None, *args, thermal=None, **kwargs):
    """Estimate heart rate, breathing rate and waveforms from a video or frames.

    See :func:`mmrphys.vitals.estimate.estimate` for the arguments. With ``thermal=`` (the video's
    thermal recording, or with no ``source`` thermal alone) and ``thermal_unit=``, ``thermal_fps=``,
    ``thermal_delay_s=``: see :func:`mmrphys.vitals.thermal.estimate_thermal`.
    """
    if thermal is not None:
        from mmrphys.vitals.thermal import estimate_thermal

        return estimate_thermal(source, thermal, *args, **kwargs)
    if source is None:
        raise ConfigError("source is None: pass a video path or frames (or thermal= alone)")
    from mmrphys.vitals.estimate import estimate as _estimate

    return _estimate(source, *args, **kwargs)


def estimate_many(*args, **kwargs):
    """Estimate every video of a list of files and folders, with a summary table; resumable.

    See :func:`mmrphys.vitals.batch.estimate_many` for the arguments.
    """
    from mmrphys.vitals.batch import estimate_many as _estimate_many

    return _estimate_many(*args, **kwargs)


def __getattr__(name: str):
    # mmrphys.Stream (mmrphys.vitals.stream.Stream) is imported on first use: `import mmrphys` stays light
    if name == "Stream":
        from mmrphys.vitals.stream import Stream

        return Stream
    raise AttributeError(f"module 'mmrphys' has no attribute {name!r}")
