"""Named post-processing presets, so that an evaluation states its choices.

=============  =====  ===========  ===========  =======  =====================================  ==========
preset         order  HR band Hz   RR band Hz   detrend  spectrum                               SNR
=============  =====  ===========  ===========  =======  =====================================  ==========
toolbox        1      0.6–3.3      0.13–0.5     λ=100    periodogram, nfft = next pow 2         toolbox
toolbox-2023   1      0.75–2.5     0.13–0.5     λ=100    periodogram, nfft = next pow 2         toolbox
mmrphys        2      0.6–3.3      0.13–0.5     none     periodogram up to 30·fs, else Welch    mmrphys
=============  =====  ===========  ===========  =======  =====================================  ==========

``toolbox`` is the rPPG-Toolbox default since its PR #371 (2025); ``toolbox-2023`` is the band of the
NeurIPS 2023 paper; ``mmrphys`` follows the MMRPhys evaluation code (2nd order filter, no detrend, Welch
with nperseg = N//2 above 30 s). SNR variants, both 10·log10 of a power ratio (``power2db``): ``toolbox``
sums the periodogram (the toolbox since its PR #288/#344); ``mmrphys`` sums squared PSD values, with a
periodogram below 256 samples and Welch (N//2) above, and a 0.1–0.54 Hz remainder band for RR.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mmrphys.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """Post-processing choices for HR/RR estimation and the SNR metric."""

    name: str
    order: int
    hr_band: tuple[float, float]
    rr_band: tuple[float, float]
    detrend: bool
    detrend_lambda: float = 100.0
    psd: str = "periodogram"  # "periodogram" | "auto" (periodogram up to welch_after_s, then Welch)
    welch_after_s: float = 30.0
    snr_variant: str = "toolbox"  # "toolbox" | "mmrphys"
    snr_rr_band: tuple[float, float] | None = None  # remainder band for RR SNR; None = rr_band
    rr_zscore: bool = False  # MMRPhys z-scores the respiration signal before its spectrum

    def band(self, kind: str) -> tuple[float, float]:
        """The rate band in Hz for ``kind`` "hr" or "rr"."""
        return self.hr_band if _kind(kind) == "hr" else self.rr_band


PRESETS: dict[str, Preset] = {
    "toolbox": Preset("toolbox", 1, (0.6, 3.3), (0.13, 0.5), detrend=True),
    "toolbox-2023": Preset("toolbox-2023", 1, (0.75, 2.5), (0.13, 0.5), detrend=True),
    "mmrphys": Preset(
        "mmrphys", 2, (0.6, 3.3), (0.13, 0.5), detrend=False, psd="auto",
        snr_variant="mmrphys", snr_rr_band=(0.1, 0.54), rr_zscore=True,
    ),
}

_FIELDS = {"order", "hr_band", "rr_band", "detrend", "detrend_lambda", "psd", "welch_after_s",
           "snr_variant", "snr_rr_band", "rr_zscore"}


def _kind(kind: str) -> str:
    if kind not in ("hr", "rr"):
        raise ConfigError(f"kind must be 'hr' or 'rr', got {kind!r}")
    return kind


def get_preset(name: str | Preset = "mmrphys", **overrides) -> Preset:
    """Return a named preset (``toolbox``, ``toolbox-2023``, ``mmrphys``), optionally with custom fields.

    Example: ``get_preset("mmrphys", hr_band=(0.7, 3.0), order=3)``; a Preset instance passes through.
    """
    if isinstance(name, Preset):
        preset = name
    else:
        try:
            preset = PRESETS[str(name).lower()]
        except KeyError:
            raise ConfigError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
    unknown = set(overrides) - _FIELDS
    if unknown:
        raise ConfigError(f"unknown preset field(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
    if not overrides:
        return preset
    for key in ("hr_band", "rr_band", "snr_rr_band"):
        if key in overrides and overrides[key] is not None:
            lo, hi = (float(v) for v in overrides[key])
            if not 0 < lo < hi:
                raise ConfigError(f"{key}: need 0 < low < high, got {overrides[key]}")
            overrides[key] = (lo, hi)
    if "order" in overrides and (int(overrides["order"]) != overrides["order"] or overrides["order"] < 1):
        raise ConfigError(f"order must be a positive integer, got {overrides['order']}")
    if overrides.get("psd", "periodogram") not in ("periodogram", "auto", "welch"):
        raise ConfigError(f"psd must be 'periodogram', 'auto' or 'welch', got {overrides['psd']!r}")
    if overrides.get("snr_variant", "toolbox") not in ("toolbox", "mmrphys"):
        raise ConfigError(f"snr_variant must be 'toolbox' or 'mmrphys', got {overrides['snr_variant']!r}")
    return replace(preset, name=f"{preset.name}+custom", **overrides)
