"""BigSmall (Narayanswamy et al., WACV 2024): multitask AU + BVP + respiration from two streams.

A "Big" 2D-CNN branch sees one high-resolution Standardized frame per 3-frame segment (spatial
appearance); a "Small" branch sees every frame as a 9x9 DiffNormalized image and models time with
wrapping temporal shift modules (WTSM, n_segment 3). Their 64x9x9 features are summed and three
dense heads give per-frame action-unit logits (12), BVP and respiration. rPPG-Toolbox configures it
with 144x144 Big and 9x9 Small frames in 3-frame chunks: 2,142,478 parameters (counted from the
toolbox's ``BigSmall.py``; the paper gives no exact count). The MMRPhys paper ran it with 72x72 Big
frames and no AU task: ``big_size=72, au=False`` (same convs; the last Big pooling is 2 instead of 4).

Inputs, any of:
- ``{"big": (B, C, T, Hb, Wb), "small": (B, C, T, 9, 9)}`` or a ``(big, small)`` tuple, already
  Standardized / DiffNormalized as the toolbox's preprocessing makes them, T a multiple of 3;
- a (B, C, T+1, H, W) tensor of raw frames, from which :func:`prepare_inputs` builds both streams
  (area resize, then Standardized / DiffNormalized per clip as the toolbox does per video chunk).
Output: ``{"bvp": (B, T), "rsp": (B, T)}`` plus ``"au": (B, T, 12)`` logits when ``au=True``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmrphys.errors import InputError
from mmrphys.models.baselines_common import check_clip, check_frames, check_options, temporal_shift
from mmrphys.models.registry import register_model


def _area_resize(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, T, size, size) by area averaging (cv2.INTER_AREA for downscaling)."""
    b, c, t, h, w = frames.shape
    if (h, w) == (size, size):
        return frames
    flat = frames.transpose(1, 2).reshape(b * t, c, h, w)
    if h == w and h % size == 0:
        flat = F.avg_pool2d(flat, h // size)  # what "area" does for an integer factor; exports to ONNX
    else:
        flat = F.interpolate(flat, size=(size, size), mode="area" if size <= min(h, w) else "bilinear")
    return flat.reshape(b, t, c, size, size).transpose(1, 2)


def prepare_inputs(raw: torch.Tensor, big_size: int = 144, small_size: int = 9) -> dict[str, torch.Tensor]:
    """Build BigSmall's two streams from (B, C, T+1, H, W) raw frames, per clip.

    small: DiffNormalized, (x[t+1] - x[t]) / (x[t+1] + x[t] + 1e-7) divided by its std over the clip;
    big: the first T frames Standardized, (x - mean) / std over the clip.
    """
    raw = raw.float()
    small = _area_resize(raw, small_size)
    diff = (small[:, :, 1:] - small[:, :, :-1]) / (small[:, :, 1:] + small[:, :, :-1] + 1e-7)
    diff = diff / diff.flatten(1).std(dim=1).clamp_min(1e-12)[:, None, None, None, None]
    big = _area_resize(raw[:, :, :-1], big_size)
    big = (big - big.flatten(1).mean(dim=1)[:, None, None, None, None]) / (
        big.flatten(1).std(dim=1).clamp_min(1e-12)[:, None, None, None, None]
    )
    return {"big": torch.nan_to_num(big), "small": torch.nan_to_num(diff)}


class BigSmall(nn.Module):
    """BigSmall; parameter names match rPPG-Toolbox's ``BigSmall`` (``big_conv1`` ... ``resp_fc2``)."""

    def __init__(
        self,
        in_channels: int = 3,
        big_size: int = 144,
        small_size: int = 9,
        n_segment: int = 3,
        au: bool = True,
        n_au: int = 12,
        nb_filters1: int = 32,
        nb_filters2: int = 64,
        nb_dense: int = 128,
        dropout: tuple[float, float, float] = (0.25, 0.5, 0.5),
    ):
        super().__init__()
        if big_size % (small_size * 4):
            raise ValueError(f"big_size must be a multiple of 4*small_size, got {big_size}")
        self.in_channels = in_channels
        self.input_size = big_size
        self.big_size, self.small_size = big_size, small_size
        self.n_segment = n_segment
        self.frame_multiple = n_segment
        self.tasks = ("bvp", "rsp") + (("au",) if au else ())
        self.last_pool = big_size // (4 * small_size)  # 144 -> 72 -> 36 -> 9 (toolbox: 4)
        f1, f2 = nb_filters1, nb_filters2

        def conv(c_in, c_out):
            return nn.Conv2d(c_in, c_out, 3, padding=1)

        self.big_conv1, self.big_conv2, self.big_conv3 = conv(in_channels, f1), conv(f1, f1), conv(f1, f1)
        self.big_conv4, self.big_conv5, self.big_conv6 = conv(f1, f2), conv(f2, f2), conv(f2, f2)
        self.big_dropout1, self.big_dropout2, self.big_dropout3 = (nn.Dropout(p) for p in dropout)
        self.small_conv1, self.small_conv2 = conv(in_channels, f1), conv(f1, f1)
        self.small_conv3, self.small_conv4 = conv(f1, f1), conv(f1, f2)
        n_flat = f2 * small_size * small_size
        if au:
            self.au_fc1, self.au_fc2 = nn.Linear(n_flat, nb_dense), nn.Linear(nb_dense, n_au)
        self.bvp_fc1, self.bvp_fc2 = nn.Linear(n_flat, nb_dense), nn.Linear(nb_dense, 1)
        self.resp_fc1, self.resp_fc2 = nn.Linear(n_flat, nb_dense), nn.Linear(nb_dense, 1)

    def _streams(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(x, dict):
            if "big" not in x or "small" not in x:
                raise InputError(f"bigsmall: input dict needs keys 'big' and 'small', got {sorted(x)}")
            big, small = x["big"], x["small"]
        elif isinstance(x, (tuple, list)):
            if len(x) != 2:
                raise InputError(f"bigsmall: expected a (big, small) pair, got {len(x)} items")
            big, small = x
        else:
            check_clip(x, "bigsmall", self.in_channels)
            s = prepare_inputs(x, self.big_size, self.small_size)
            big, small = s["big"], s["small"]
        check_clip(big, "bigsmall (big stream)", self.in_channels, self.big_size)
        check_clip(small, "bigsmall (small stream)", self.in_channels, self.small_size)
        if big.shape[:3] != small.shape[:3]:
            raise InputError(
                f"bigsmall: big {tuple(big.shape)} and small {tuple(small.shape)} differ in B or T"
            )
        check_frames(small.shape[2], self.n_segment, "bigsmall")
        return big, small

    def forward(self, x, labels=None) -> dict[str, torch.Tensor]:
        """Streams dict/tuple, or (B, C, T+1, H, W) raw frames -> bvp, rsp (B, T) [and au (B, T, 12)]."""
        big, small = self._streams(x)
        b, c, t = small.shape[:3]
        # Big branch: the first frame of every segment, as a batch of images.
        key = big[:, :, :: self.n_segment].transpose(1, 2).reshape(-1, c, self.big_size, self.big_size)
        h = F.relu(self.big_conv2(F.relu(self.big_conv1(key))))
        h = self.big_dropout1(F.avg_pool2d(h, 2))
        h = F.relu(self.big_conv4(F.relu(self.big_conv3(h))))
        h = self.big_dropout2(F.avg_pool2d(h, 2))
        h = F.relu(self.big_conv6(F.relu(self.big_conv5(h))))
        h = self.big_dropout3(F.avg_pool2d(h, self.last_pool))
        h = h.repeat_interleave(self.n_segment, dim=0)  # back to one feature map per frame

        # Small branch: every frame, with wrapping shifts across the 3-frame segment.
        s = small.transpose(1, 2).reshape(b * t, c, self.small_size, self.small_size)
        for conv in (self.small_conv1, self.small_conv2, self.small_conv3, self.small_conv4):
            s = F.relu(conv(temporal_shift(s, self.n_segment, wrap=True)))

        shared = (h + s).flatten(1)
        out = {
            "bvp": self.bvp_fc2(F.relu(self.bvp_fc1(shared))).view(b, t),
            "rsp": self.resp_fc2(F.relu(self.resp_fc1(shared))).view(b, t),
        }
        if "au" in self.tasks:
            out["au"] = self.au_fc2(F.relu(self.au_fc1(shared))).view(b, t, -1)
        return out


@register_model(size=144, frames=181)
def bigsmall(
    in_channels: int = 3, big_size: int = 144, small_size: int = 9, au: bool = True, tasks=None, **kwargs
) -> BigSmall:
    """BigSmall as rPPG-Toolbox configures it (144x144 Big, 9x9 Small, 3-frame chunks, AU+BVP+resp)."""
    check_options("bigsmall", kwargs, tasks, supported_tasks=("bvp", "rsp", "au"))
    if tasks is not None:  # the BVP and respiration heads are always built; ``tasks`` only decides AU
        au = "au" in ((tasks,) if isinstance(tasks, str) else tuple(tasks))
    return BigSmall(in_channels=in_channels, big_size=big_size, small_size=small_size, au=au)
