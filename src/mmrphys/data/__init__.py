"""Datasets: one small loader per on-disk layout behind one interface, and the preprocessing cache.

>>> from mmrphys import data
>>> recs = data.load_dataset("ubfc-rppg", "/data/UBFC-rPPG")      # list[Recording], sorted
>>> frames, times = recs[0].load()                                 # or stream: recs[0].frames()
>>> labels = recs[0].aligned_labels(len(frames), times)            # {"bvp": (N,)}

Preprocess to a cache with :func:`mmrphys.data.cache.preprocess` (``mmrphys preprocess``), split by
subject with :mod:`mmrphys.data.splits` and train from :class:`mmrphys.data.torch_dataset.CacheDataset`.
"""

from mmrphys.data.align import align_labels, resample_to_frames
from mmrphys.data.base import Loader, Recording, Signal
from mmrphys.data.registry import get_loader, list_datasets, load_dataset, register

__all__ = [
    "Loader",
    "Recording",
    "Signal",
    "register",
    "get_loader",
    "list_datasets",
    "load_dataset",
    "align_labels",
    "resample_to_frames",
]
