"""FactorizePhys: published parameter counts, shapes, FSAM residual, official weights on real video."""

from __future__ import annotations

import pytest
import torch

from mmrphys import models
from mmrphys.errors import ConfigError
from mmrphys.models import count_parameters


def test_published_parameter_counts():
    base = models.create("factorizephys")
    fsam = models.create("factorizephys", attention="fsam")
    assert count_parameters(base) == 51_840
    assert count_parameters(fsam, inference=False) == 52_168
    assert count_parameters(fsam) == 51_840  # FSAM skipped at inference by default
    on = models.create("factorizephys", attention="fsam", attention_at_inference=True)
    assert count_parameters(on) == 52_168


def test_shapes_and_attention_point():
    net = models.create("factorizephys").eval()
    x = torch.rand(2, 3, 17, 72, 72)
    with torch.no_grad():
        feats = net.forward_features(x)
        out = net(x)
    assert tuple(feats["bvp"].shape) == (2, 16, 16, 7, 7)  # FSAM matrix T x 8*7*7 = 392
    assert tuple(out["bvp"].shape) == (2, 16) and net.frame_multiple == 1
    with pytest.raises(ConfigError, match="BVP only"):
        models.create("factorizephys", tasks=("bvp", "rsp"))


def test_fsam_residual_switch_and_gradients():
    torch.manual_seed(0)
    res = models.create("factorizephys", attention="fsam", dropout=0.0).train()
    plain = models.create("factorizephys", attention="fsam", dropout=0.0, residual=False).train()
    plain.load_state_dict(res.state_dict())
    x = torch.rand(1, 3, 9, 72, 72)
    a, b = res(x)["bvp"], plain(x)["bvp"]
    # the residual path changes the output by 30 % of its scale (measured), rounding by < 6.4e-4
    assert float((a - b).detach().abs().max()) > 0.05 * float(a.detach().abs().max())
    (a.pow(2).mean() + b.pow(2).mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in res.parameters())


@pytest.mark.reference
@pytest.mark.realdata
def test_official_weights_find_the_pulse_on_real_video(official_dir, ubfc_mini):
    """PURE-trained weights (incl. the earlier-layout MMRPhys file) give the right HR on UBFC subject 3."""
    import cv2
    import numpy as np
    from scipy import signal

    from mmrphys.models.checkpoints import load_official

    video = ubfc_mini / "subject3" / "vid.mp4"
    if not video.is_file():
        pytest.skip("subject3 absent")
    import av

    frames = []
    with av.open(str(video)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i >= 301:
                break
            frames.append(fr.to_ndarray(format="rgb24"))
    casc = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    x0, y0, w, h = max(
        casc.detectMultiScale(cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY), 1.1, 5), key=lambda b: b[2] * b[3]
    )
    s = int(max(w, h) * 1.5)
    cx, cy = x0 + w // 2, y0 + h // 2
    x0, y0 = max(cx - s // 2, 0), max(cy - s // 2, 0)
    crops = np.stack(
        [cv2.resize(f[y0 : y0 + s, x0 : x0 + s], (72, 72), interpolation=cv2.INTER_AREA) for f in frames]
    )
    clip = torch.from_numpy(crops.astype(np.float32)).permute(3, 0, 1, 2)[None]
    gt = np.loadtxt(ubfc_mini / "subject3" / "ground_truth.txt")[0][1:301]

    def hr(sig, fs=30.0):
        b, a = signal.butter(2, [0.6 / fs * 2, 3.3 / fs * 2], "bandpass")
        f, p = signal.periodogram(signal.filtfilt(b, a, sig), fs, nfft=4096)
        band = (f > 0.6) & (f < 3.3)
        return 60 * f[band][p[band].argmax()]

    for name in ("PURE_FactorizePhys_FSAM_Res.pth", "PURE_MMRPhys_SFSAM_Label_Epoch9.pth"):
        with torch.no_grad():
            bvp = load_official(official_dir / name)(clip)["bvp"][0].numpy()
        assert abs(hr(bvp) - hr(gt)) < 3.0, name
