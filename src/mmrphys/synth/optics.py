"""Skin optics in optical density: skin tone (melanin, haemoglobin) and the blood-volume pulse.

A camera pixel of skin is, in linear light, a small surface reflection (specular, untouched by the
pigments) plus the diffuse light that went through the epidermis (melanin) and dermis (blood). In
optical density ``OD = -log(diffuse reflectance)`` the pigments add (Beer-Lambert; Tsumura et al.
2003 separate skin images this way along two absorption directions in log-RGB), so

- skin tone changes by adding ``melanin * MELANIN + haemoglobin * HAEMOGLOBIN`` to the OD of skin
  pixels (:func:`skin_tone`), light to dark skin by one number;
- the pulse is a change of blood volume, i.e. of OD along ``HAEMOGLOBIN``: green changes most, then
  blue, red least (the Pbv signature of de Haan & van Leest 2014, :data:`mmrphys.synth.clip.PBV`).

Stills are gamma-encoded (sRGB-like, ``GAMMA``); the transforms go to linear light and back.
``MELANIN`` is fitted to the optical-density differences between the Monk skin-tone swatches 5-8
(it falls from blue to red, like melanin's absorption spectrum).
"""

from __future__ import annotations

import numpy as np

from mmrphys.synth.clip import PBV

GAMMA = 2.2
HAEMOGLOBIN = PBV / np.linalg.norm(PBV)  # R, G, B
MELANIN = np.array([0.38, 0.57, 0.73])
MELANIN = MELANIN / np.linalg.norm(MELANIN)


def to_linear(img) -> np.ndarray:
    """Gamma-encoded 0-255 values to linear light 0-1 (float32)."""
    return np.power(np.asarray(img, np.float32) / 255.0, GAMMA, dtype=np.float32)


def to_encoded(lin) -> np.ndarray:
    """Linear light 0-1 to gamma-encoded 0-255 (float32, not clipped above)."""
    return 255.0 * np.power(np.maximum(np.asarray(lin, np.float32), 0.0), 1.0 / GAMMA, dtype=np.float32)


def skin_tone(
    img, skin, melanin: float = 0.0, haemoglobin: float = 0.0, specular: float = 0.02
) -> tuple[np.ndarray, np.ndarray]:
    """Change the skin's pigments: ``img`` (H, W, 3) 0-255 gamma-encoded, ``skin`` (H, W) weight 0-1.

    ``melanin`` and ``haemoglobin`` add optical density (natural-log units, along ``MELANIN`` /
    ``HAEMOGLOBIN``) to the diffuse light of skin pixels; ``specular`` is the linear-light surface
    reflection (relative to white) the pigments do not touch. Returns the new image (float32 0-255)
    and the diffuse share of each pixel's linear light (H, W, 3), which scales how strongly a pulse
    shows there: a darker skin shows a smaller relative pulse above the same surface reflection.
    """
    lin = to_linear(img)
    spec = np.minimum(lin, np.float32(specular))
    diffuse = lin - spec
    od = np.asarray(skin, np.float32)[..., None] * (melanin * MELANIN + haemoglobin * HAEMOGLOBIN).astype(
        np.float32
    )
    diffuse *= np.exp(-od)
    diffuse = np.minimum(diffuse, 1.0 - spec)  # less melanin than the still: lighter, at most white
    out = diffuse + spec
    share = np.divide(diffuse, out, out=np.zeros_like(out), where=out > 1e-6)
    return to_encoded(out), share


def pulse_basis(encoded, diffuse_share, amplitude) -> np.ndarray:
    """(H, W, 3) change of the encoded image per unit of blood-volume OD change: multiply by the
    blood-volume OD of a frame and add to the image. ``amplitude`` (H, W) is the OD per unit pulse at
    each pixel (0 off the skin). More blood absorbs more: the change is negative, largest in green."""
    rel = -(diffuse_share * HAEMOGLOBIN.astype(np.float32)) / GAMMA  # d(encoded)/encoded per unit OD
    return (np.asarray(encoded, np.float32) * rel * np.asarray(amplitude, np.float32)[..., None]).astype(
        np.float32
    )
