"""Beat-by-beat pulse and breath-by-breath respiration for the re-animated clips.

:func:`draw_physiology` draws one clip's physiology from a NumPy generator:

- heart rate: a mean drawn from 40-180 bpm (half uniform, half around resting rates), a linear trend
  inside the clip, respiratory sinus arrhythmia (HR up while breathing in), a Mayer wave (~0.1 Hz)
  and beat-to-beat interval jitter (HRV);
- pulse: every beat its own waveform (asymmetric systolic peak, dicrotic notch and diastolic wave
  whose timing is fixed in seconds, compressed at short beats), amplitude varying beat to beat and
  with breathing, a breathing baseline;
- respiration: breath-by-breath durations around a rate drawn from 6-30 /min, shorter inhale than
  exhale (passive, exponential exhale), varying depth, occasional sighs, end-expiratory pauses and
  sometimes an apnoea of a few seconds.

The waveforms are functions of time (:meth:`Physio.pulse_at`), so the renderer can read the pulse
a few tens of milliseconds late in some parts of the face (pulse transit) and the ballistocardiogram
from its slope.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mmrphys.errors import ConfigError


@dataclass(frozen=True)
class PhysioParams:
    """Ranges the physiology is drawn from (rates in bpm / breaths per minute)."""

    hr_range_bpm: tuple[float, float] = (40.0, 180.0)
    rr_range_bpm: tuple[float, float] = (6.0, 30.0)
    hr_uniform: float = 0.5  # share of clips whose mean HR is uniform in the range (else ~N(78, 16))
    rr_uniform: float = 0.5  # same for breathing (else ~N(15, 4))
    hr_trend_bpm_per_min: float = 20.0  # std of the linear HR trend inside a clip
    rsa_max_bpm: float = 10.0  # peak-to-peak RSA at most (drawn 0..max, scaled down at high HR)
    ibi_jitter_max: float = 0.04  # beat-to-beat interval jitter, std as a fraction of the interval
    apnoea_probability: float = 0.12  # clips with one breathing pause
    apnoea_s: tuple[float, float] = (2.0, 8.0)

    def validate(self) -> PhysioParams:
        lo, hi = self.hr_range_bpm
        if not 20 <= lo < hi <= 240:
            raise ConfigError(f"hr_range_bpm must be within 20-240 and increasing, got {self.hr_range_bpm}")
        lo, hi = self.rr_range_bpm
        if not 2 <= lo < hi <= 60:
            raise ConfigError(f"rr_range_bpm must be within 2-60 and increasing, got {self.rr_range_bpm}")
        return self


@dataclass
class Beat:
    """One pulse: onset time (s), amplitude and the shape's timing (s after the onset)."""

    onset_s: float
    amp: float
    sys_s: float
    up_s: float
    down_s: float
    dia_s: float
    dia_w_s: float
    dia_ratio: float
    decay_s: float = 0.3
    runoff: float = 0.0


@dataclass
class Physio:
    """One clip's physiology sampled at the frame times ``t`` (s), plus the beats to evaluate the pulse
    at any other time. ``rsp`` is chest volume (inhale up), ``hr_inst``/``rr_inst`` per frame (bpm)."""

    t: np.ndarray
    fs: float
    beats: list[Beat]
    rsp: np.ndarray
    hr_inst: np.ndarray
    rr_inst: np.ndarray
    breath_onsets_s: np.ndarray
    apnoea: tuple[float, float] | None = None
    baseline_amp: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def hr_bpm(self) -> float:
        return float(np.mean(self.hr_inst))

    @property
    def rr_bpm(self) -> float:
        return float(self.info["rr_bpm"])

    def pulse_at(self, times) -> np.ndarray:
        """Blood volume (arbitrary units, beats of ~unit height) at ``times`` (s): more blood, higher."""
        times = np.asarray(times, dtype=np.float64)
        out = np.zeros_like(times)
        onsets = np.array([b.onset_s for b in self.beats])
        for b, lo, hi in zip(
            self.beats, np.searchsorted(times, onsets - 0.3), np.searchsorted(times, onsets + 1.6)
        ):
            if hi <= lo:
                continue
            tau = times[lo:hi] - b.onset_s
            d = tau - b.sys_s
            w = np.where(d < 0, b.up_s, b.down_s)
            wave = (
                np.exp(-0.5 * (d / w) ** 2)
                + b.dia_ratio * np.exp(-0.5 * ((tau - b.dia_s) / b.dia_w_s) ** 2)
                + b.runoff * np.where(d < 0, np.exp(-0.5 * (d / b.up_s) ** 2), np.exp(-d / b.decay_s))
            )
            out[lo:hi] += b.amp * wave
        # the breathing baseline (respiratory-induced intensity variation) rides on the pulse
        if self.baseline_amp:
            out += self.baseline_amp * np.interp(times, self.t, self.rsp)
        return out

    @property
    def beats_s(self) -> np.ndarray:
        """Systolic peak times (s) of the beats whose peak lies in the clip."""
        peaks = np.array([b.onset_s + b.sys_s for b in self.beats])
        return peaks[(peaks >= self.t[0]) & (peaks <= self.t[-1])]


def _mean_rate(rng, lo, hi, uniform_share, centre, sd) -> float:
    if rng.uniform() < uniform_share:
        return float(rng.uniform(lo, hi))
    return float(np.clip(rng.normal(centre, sd), lo, hi))


def _respiration(rng, t_ext: np.ndarray, rr0: float, p: PhysioParams):
    """Chest volume on the extended time grid, breath onsets and per-sample breath rate (0 in pauses)."""
    t_start, t_end = float(t_ext[0]), float(t_ext[-1])
    cv = rng.uniform(0.03, 0.2)  # breath-to-breath duration variability
    inhale = rng.uniform(0.33, 0.45)  # inhale share of a breath
    depth_cv = rng.uniform(0.05, 0.25)
    trend = rng.normal(0, 0.1) * rr0  # change of rate over a minute
    pause_share = rng.uniform(0.0, 0.15)  # end-expiratory pauses, share of the breath
    apnoea = None
    if rng.uniform() < p.apnoea_probability:
        dur = rng.uniform(*p.apnoea_s)
        start = rng.uniform(t_start + 1.0, max(t_start + 1.0, t_end - 0.5 * dur))
        apnoea = (float(start), float(start + dur))
    vol = np.zeros_like(t_ext)
    rate = np.zeros_like(t_ext)
    onsets = []
    t0 = t_start - rng.uniform(0, 60.0 / rr0)
    lo, hi = p.rr_range_bpm
    while t0 < t_end:
        if apnoea is not None and apnoea[0] <= t0 < apnoea[1]:
            t0 = apnoea[1]
            continue
        rr = float(np.clip(rr0 + trend * (t0 - t_start) / 60.0, lo, hi))
        period = float(np.clip(60.0 / rr * (1 + rng.normal(0, cv)), 60.0 / hi, 60.0 / lo))
        depth = max(0.2, 1 + rng.normal(0, depth_cv)) * (
            rng.uniform(2.0, 2.6) if rng.uniform() < 0.03 else 1.0
        )
        ti = inhale * period
        rest = rng.uniform(0, pause_share) * period
        te = period - ti - rest
        tau_e = te / rng.uniform(2.0, 4.0)
        s = slice(*np.searchsorted(t_ext, [t0, t0 + period]))
        tau = t_ext[s] - t0
        insp = 0.5 * (1 - np.cos(np.pi * np.clip(tau / ti, 0, 1)))
        tex = np.clip(tau - ti, 0, te)
        expi = (np.exp(-tex / tau_e) - np.exp(-te / tau_e)) / (1 - np.exp(-te / tau_e))
        vol[s] = depth * np.where(tau < ti, insp, np.where(tau < ti + te, expi, 0.0))
        rate[s] = 60.0 / period
        onsets.append(t0)
        t0 += period
    # rounded turns (no cusp at the end of the inhale), then a slow drift of the end-expiratory volume
    k = max(1, int(round(0.12 / (t_ext[1] - t_ext[0]))))
    ker = np.exp(-0.5 * (np.arange(-3 * k, 3 * k + 1) / k) ** 2)
    vol = np.convolve(np.pad(vol, 3 * k, mode="edge"), ker / ker.sum(), mode="valid")
    vol += rng.normal(0, 0.05) * np.sin(2 * np.pi * t_ext / rng.uniform(20, 60) + rng.uniform(0, 6.3))
    return vol, rate, np.array(onsets), apnoea


def draw_physiology(
    rng: np.random.Generator,
    n_frames: int,
    fs: float,
    params: PhysioParams | None = None,
    hr_bpm: float | None = None,
    rr_bpm: float | None = None,
) -> Physio:
    """One clip's physiology at ``n_frames`` frame times ``k / fs``; ``hr_bpm``/``rr_bpm`` fix the means."""
    p = (params or PhysioParams()).validate()
    if n_frames < 2 or fs <= 0:
        raise ConfigError(f"need n_frames >= 2 and fs > 0, got {n_frames}, {fs}")
    t = np.arange(n_frames) / fs
    duration = n_frames / fs
    pre, post = 3.0, 2.0  # beats and breaths start before the clip and end after it
    t_ext = np.arange(-int(pre * fs), n_frames + int(post * fs)) / fs
    hr0 = hr_bpm if hr_bpm is not None else _mean_rate(rng, *p.hr_range_bpm, p.hr_uniform, 78.0, 16.0)
    rr0 = rr_bpm if rr_bpm is not None else _mean_rate(rng, *p.rr_range_bpm, p.rr_uniform, 15.0, 4.0)
    vol, rate, onsets, apnoea = _respiration(rng, t_ext, rr0, p)

    # heart rate: trend + RSA (faster while breathing in) + Mayer wave, around hr0
    dvol = np.gradient(vol, t_ext)
    rsa = rng.uniform(0, p.rsa_max_bpm) * min(1.0, 90.0 / hr0) * dvol / max(np.abs(dvol).max(), 1e-9) / 2
    mayer = rng.uniform(0, 3.0) * np.sin(2 * np.pi * rng.uniform(0.07, 0.12) * t_ext + rng.uniform(0, 6.3))
    trend = rng.normal(0, p.hr_trend_bpm_per_min / 60.0) * (t_ext - duration / 2)
    lo, hi = p.hr_range_bpm
    hr_curve = hr0 + trend + rsa + mayer
    hr_curve += hr0 - hr_curve[(t_ext >= 0) & (t_ext < duration)].mean()
    hr_curve = np.clip(hr_curve, lo, hi)

    # beats: intervals from the HR curve with jitter; each beat its own shape
    jitter = rng.uniform(0.003, p.ibi_jitter_max)
    sys_s, up_s, down_s = rng.uniform(0.10, 0.18), rng.uniform(0.035, 0.06), rng.uniform(0.08, 0.14)
    dia_gap, dia_w, dia_ratio = rng.uniform(0.22, 0.34), rng.uniform(0.06, 0.11), rng.uniform(0.05, 0.6)
    decay_s, runoff = rng.uniform(0.25, 0.5), rng.uniform(0.0, 0.5)  # diastolic run-off
    riav = rng.uniform(0.0, 0.3)  # pulse amplitude modulation by breathing
    amp_cv = rng.uniform(0.01, 0.08)
    beats: list[Beat] = []
    onset = float(t_ext[0]) - rng.uniform(0, 60.0 / hr0)
    vol_n = vol / max(np.abs(vol).max(), 1e-9)
    while onset < t_ext[-1]:
        hr_here = float(np.interp(onset, t_ext, hr_curve))
        ibi = float(np.clip(60.0 / hr_here * (1 + rng.normal(0, jitter)), 60.0 / hi, 60.0 / lo))
        c = min(1.0, ibi / 0.8)  # short beats: the same shape, compressed in time
        j = 1 + rng.normal(0, 0.04, 5)
        amp = max(0.3, 1 + riav * (float(np.interp(onset, t_ext, vol_n)) - 0.5) + rng.normal(0, amp_cv))
        beats.append(
            Beat(
                onset,
                amp,
                c * sys_s * j[0],
                c * up_s * j[1],
                c * down_s * j[2],
                c * (sys_s + dia_gap) * j[3],
                c * dia_w * j[4],
                dia_ratio,
                c * decay_s,
                runoff,
            )
        )
        onset += ibi
    onsets_b = np.array([b.onset_s for b in beats])
    ibis = np.diff(onsets_b)
    hr_inst = 60.0 / np.interp(t, onsets_b[:-1] + ibis / 2, ibis)

    inside = (t_ext >= 0) & (t_ext < duration + 0.5 / fs)
    rsp = vol[inside][:n_frames]
    rr_inst = rate[inside][:n_frames]
    in_clip = (onsets >= -60.0 / rr0) & (onsets < duration)
    rr_mean = float(np.mean(rr_inst[rr_inst > 0])) if np.any(rr_inst > 0) else float(rr0)
    phys = Physio(
        t=t,
        fs=float(fs),
        beats=beats,
        rsp=rsp,
        hr_inst=hr_inst,
        rr_inst=rr_inst,
        breath_onsets_s=onsets[in_clip],
        apnoea=apnoea,
        baseline_amp=float(rng.uniform(0.0, 0.15)),
        info={
            "hr_mean_drawn_bpm": hr0,
            "rr_mean_drawn_bpm": rr0,
            "rr_bpm": rr_mean,
            "ibi_jitter": jitter,
            "riav": riav,
            "dicrotic_ratio": dia_ratio,
            "apnoea_s": list(apnoea) if apnoea else None,
        },
    )
    return phys
