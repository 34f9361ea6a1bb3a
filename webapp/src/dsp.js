// Signal processing used in the browser: the Python package's filters, spectra, rates and quality
// index (mmrphys.signals, same steps, float64), POS (the fallback method), resampling onto a uniform
// grid and the overlap-add stitching of model windows (mmrphys.tensors.OverlapAdd). Plain typed
// arrays in/out, sampling rate `fs` in Hz, rates per minute.

/** Smallest power of two >= n. */
export function nextPow2(n) {
  let p = 1;
  while (p < n) p <<= 1;
  return p;
}

/** In-place radix-2 complex FFT of (re, im), length a power of two; `inverse` scales by 1/n. */
export function fft(re, im, inverse = false) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = ((inverse ? 2 : -2) * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const tr = re[b] * cr - im[b] * ci;
        const ti = re[b] * ci + im[b] * cr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
  if (inverse) {
    for (let i = 0; i < n; i++) {
      re[i] /= n;
      im[i] /= n;
    }
  }
}

/** Mean and population standard deviation of x (numpy's mean() and std()). */
export function meanStd(x) {
  const n = x.length || 1;
  let m = 0;
  for (let i = 0; i < x.length; i++) m += x[i];
  m /= n;
  let q = 0;
  for (let i = 0; i < x.length; i++) q += (x[i] - m) ** 2;
  return [m, Math.sqrt(q / n)];
}

// ---------------------------------------------------------------------------------------------------
// The Python design, step by step (mmrphys.signals): a Butterworth band-pass applied forward and
// backward exactly as scipy.signal.filtfilt does it, the PSD as scipy's periodogram / Welch compute
// it, the peak in the band with the harmonic check, and the zoomed-spectrum refinement. All in
// float64; tests/web/test_web_dsp.py runs these functions in Node and mmrphys.signals on the same
// inputs and bounds the difference. Settings (bands, order, PSD rule) come from /api/model.json.
// ---------------------------------------------------------------------------------------------------

/** True when x carries no variation (as mmrphys.signals._checks.is_constant). */
export function isConstant(x) {
  if (x.length < 2) return true;
  let lo = Infinity;
  let hi = -Infinity;
  let mag = 0;
  for (const v of x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    mag = Math.max(mag, Math.abs(v));
  }
  return hi - lo <= 1e-12 * Math.max(mag, 1e-300);
}

// Complex numbers as [re, im] pairs: just what the filter design needs.
const cadd = (a, b) => [a[0] + b[0], a[1] + b[1]];
const csub = (a, b) => [a[0] - b[0], a[1] - b[1]];
const cmul = (a, b) => [a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]];
const cdiv = (a, b) => {
  const d = b[0] * b[0] + b[1] * b[1];
  return [(a[0] * b[0] + a[1] * b[1]) / d, (a[1] * b[0] - a[0] * b[1]) / d];
};
const csqrt = (a) => {
  // principal square root, as numpy's
  const r = Math.hypot(a[0], a[1]);
  const re = Math.sqrt(Math.max(0, (r + a[0]) / 2));
  const im = Math.sqrt(Math.max(0, (r - a[0]) / 2));
  return [re, a[1] < 0 || Object.is(a[1], -0) ? -im : im];
};

/** Real coefficients of prod (z - r) over complex roots, highest power first (numpy.poly). */
function polyReal(roots) {
  let c = [[1, 0]];
  for (const r of roots) {
    const next = c.map((v) => [v[0], v[1]]).concat([[0, 0]]);
    for (let i = 0; i < c.length; i++) next[i + 1] = csub(next[i + 1], cmul(c[i], r));
    c = next;
  }
  return Float64Array.from(c, (v) => v[0]);
}

/**
 * Butterworth band-pass design, the steps of scipy.signal.butter(order, [low, high], 'bandpass'):
 * analog prototype poles, pre-warped edges, low-pass to band-pass, bilinear transform. Returns
 * {b, a} with a[0] = 1 (2*order + 1 coefficients each).
 */
export function butterBandpass(order, lowHz, highHz, fs) {
  if (!(Number.isInteger(order) && order >= 1)) throw new Error(`order must be a positive integer, got ${order}`);
  if (!(lowHz > 0 && lowHz < highHz && highHz < fs / 2)) throw new Error(`band ${lowHz}-${highHz} Hz invalid at fs ${fs}`);
  const n = order;
  const proto = []; // -exp(i*pi*m/(2n)), m = -n+1, -n+3, ..., n-1
  for (let m = -n + 1; m < n; m += 2) proto.push([-Math.cos((Math.PI * m) / (2 * n)), -Math.sin((Math.PI * m) / (2 * n))]);
  const fsd = 2; // scipy designs on frequencies normalised to Nyquist = 1, i.e. fs = 2
  const warp = (hz) => 2 * fsd * Math.tan((Math.PI * ((hz / fs) * 2)) / fsd);
  const w1 = warp(lowHz);
  const w2 = warp(highHz);
  const bw = w2 - w1;
  const wo = Math.sqrt(w1 * w2);
  const lp = proto.map((p) => [(p[0] * bw) / 2, (p[1] * bw) / 2]);
  const poles = [];
  for (const p of lp) poles.push(cadd(p, csqrt(csub(cmul(p, p), [wo * wo, 0]))));
  for (const p of lp) poles.push(csub(p, csqrt(csub(cmul(p, p), [wo * wo, 0]))));
  // bilinear transform (fs2 = 2 * fsd): n zeros at s = 0 -> z = 1, n zeros at infinity -> z = -1
  const fs2 = 2 * fsd;
  const zeros = [];
  for (let i = 0; i < n; i++) zeros.push([1, 0]);
  for (let i = 0; i < n; i++) zeros.push([-1, 0]);
  const pz = poles.map((p) => cdiv(cadd([fs2, 0], p), csub([fs2, 0], p)));
  let num = [1, 0];
  for (let i = 0; i < n; i++) num = cmul(num, [fs2, 0]);
  let den = [1, 0];
  for (const p of poles) den = cmul(den, csub([fs2, 0], p));
  const k = bw ** n * cdiv(num, den)[0];
  return { b: polyReal(zeros).map((v) => v * k), a: polyReal(pz) };
}

/** scipy.signal.lfilter(b, a, x, zi=zi): direct form II transposed, a[0] = 1; returns y. */
export function lfilter(b, a, x, zi) {
  const m = a.length;
  const z = Float64Array.from(zi ?? new Float64Array(m - 1));
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const yi = b[0] * xi + z[0];
    for (let j = 1; j < m - 1; j++) z[j - 1] = b[j] * xi + z[j] - a[j] * yi;
    z[m - 2] = b[m - 1] * xi - a[m - 1] * yi;
    y[i] = yi;
  }
  return y;
}

/** scipy.signal.lfilter_zi: the state of the step response's steady state, (I - A^T) zi = B. */
export function lfilterZi(b, a) {
  const n = a.length - 1;
  const m = Array.from({ length: n }, (_, i) => {
    const row = new Float64Array(n + 1);
    row[i] += 1;
    row[0] += a[i + 1]; // I - companion(a)^T: first column +a[i+1], superdiagonal -1
    if (i + 1 < n) row[i + 1] -= 1;
    row[n] = b[i + 1] - a[i + 1] * b[0];
    return row;
  });
  for (let c = 0; c < n; c++) {
    // Gaussian elimination with partial pivoting (4 x 4 for an order-2 band-pass)
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[piv][c])) piv = r;
    [m[c], m[piv]] = [m[piv], m[c]];
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  const zi = new Float64Array(n);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k++) s -= m[r][k] * zi[k];
    zi[r] = s / m[r][r];
  }
  return zi;
}

/** scipy.signal.filtfilt(b, a, x) with its defaults: odd extension by 3*len(a), steady-state zi. */
export function filtfilt(b, a, x) {
  const n = x.length;
  const pad = 3 * Math.max(a.length, b.length);
  if (n <= pad) throw new Error(`filtfilt: ${n} samples, need more than ${pad}`);
  const ext = new Float64Array(n + 2 * pad);
  for (let i = 0; i < pad; i++) ext[i] = 2 * x[0] - x[pad - i];
  for (let i = 0; i < n; i++) ext[pad + i] = x[i];
  for (let i = 0; i < pad; i++) ext[pad + n + i] = 2 * x[n - 1] - x[n - 2 - i];
  const zi = lfilterZi(b, a);
  const fwd = lfilter(b, a, ext, zi.map((v) => v * ext[0]));
  fwd.reverse();
  const back = lfilter(b, a, fwd, zi.map((v) => v * fwd[0]));
  back.reverse();
  return back.slice(pad, pad + n);
}

/** Zero-phase Butterworth band-pass (mmrphys.signals.bandpass): design + filtfilt. */
export function bandpass(x, fs, lowHz, highHz, order = 2) {
  const { b, a } = butterBandpass(order, lowHz, highHz, fs);
  return filtfilt(b, a, x);
}

/** Fewest samples a rate can be computed from (mmrphys.signals.min_samples): filtfilt's pad + 1. */
export function minSamples(preset) {
  return 3 * (2 * preset.order + 1) + 1;
}

/** The preset's band for 'hr' or 'rr' ([low, high] Hz). */
export function presetBand(preset, kind) {
  return kind === 'hr' ? preset.hr_band : preset.rr_band;
}

/**
 * The preset's post-processing (mmrphys.signals.preprocess): the Butterworth band-pass forward and
 * backward, then a z-score for 'rr' when the preset says so; zeros for a constant input. The
 * smoothness-priors detrend of the toolbox presets is not in the page: such a preset is refused.
 */
export function preprocess(x, fs, preset, kind) {
  if (preset.detrend) throw new Error(`preset ${preset.name}: the page does not implement the detrend`);
  if (isConstant(x)) return new Float64Array(x.length);
  const [lo, hi] = presetBand(preset, kind);
  const out = bandpass(x, fs, lo, hi, preset.order);
  if (kind === 'rr' && preset.rr_zscore) {
    const [m, sd] = meanStd(out);
    if (sd > 0) for (let i = 0; i < out.length; i++) out[i] = (out[i] - m) / sd;
  }
  return out;
}

/** The PSD estimator for n samples (mmrphys.signals.spectrum.psd_kind): 'periodogram' or 'welch'. */
export function psdKind(n, fs, method, welchAfterS = 30) {
  if (method === 'auto') return n <= welchAfterS * fs ? 'periodogram' : 'welch';
  if (method !== 'periodogram' && method !== 'welch') throw new Error(`unknown PSD method ${method}`);
  return method;
}

/** Periodic Hann window of length m (scipy.signal.get_window('hann', m)). */
function hannPeriodic(m) {
  return Float64Array.from({ length: m }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / m));
}

/** |DFT|^2 of x * w at the frequencies f (Hz): the DTFT evaluated directly. */
function dtftPower(x, start, w, freqs, fs) {
  const p = new Float64Array(freqs.length);
  for (let i = 0; i < freqs.length; i++) {
    const om = (-2 * Math.PI * freqs[i]) / fs;
    let re = 0;
    let im = 0;
    for (let j = 0; j < w.length; j++) {
      const v = x[start + j] * w[j];
      re += v * Math.cos(om * j);
      im += v * Math.sin(om * j);
    }
    p[i] = re * re + im * im;
  }
  return p;
}

function welchSegments(n) {
  const seg = Math.max(2, Math.min(n >> 1, n));
  const step = seg - (seg >> 1);
  const starts = [];
  for (let s = 0; s + seg <= n; s += step) starts.push(s);
  return { seg, starts, w: hannPeriodic(seg) };
}

/**
 * One-sided PSD {freqs, pxx} as mmrphys.signals.spectrum: a boxcar periodogram with nfft = next
 * power of two (by FFT), or Welch with nperseg = n // 2 (periodic Hann, 50 % overlap, nfft = nperseg,
 * by a direct DFT). Powers are scipy's up to one constant factor per call, which no rate or quality
 * depends on (they use maxima and ratios of in-band powers only).
 */
export function spectrum(x, fs, kind) {
  const n = x.length;
  if (kind === 'periodogram') {
    const nfft = nextPow2(n);
    const re = new Float64Array(nfft);
    const im = new Float64Array(nfft);
    re.set(x);
    fft(re, im);
    const pxx = new Float64Array(nfft / 2 + 1);
    for (let i = 0; i < pxx.length; i++) pxx[i] = re[i] * re[i] + im[i] * im[i];
    return { freqs: Float64Array.from(pxx, (_, i) => (i * fs) / nfft), pxx };
  }
  const { seg, starts, w } = welchSegments(n);
  const freqs = Float64Array.from({ length: (seg >> 1) + 1 }, (_, i) => (i * fs) / seg);
  const pxx = new Float64Array(freqs.length);
  for (const s of starts) dtftPower(x, s, w, freqs, fs).forEach((v, i) => (pxx[i] += v / starts.length));
  return { freqs, pxx };
}

function medianOf(values) {
  const s = Float64Array.from(values).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

/**
 * The harmonic check (mmrphys.signals.spectrum.subharmonic_bin): when the top bin k may be the
 * pulse's 2nd harmonic, the bin near half its frequency is taken if it is a local maximum, holds at
 * least `ratio` of the top's power and stands `floor` times above the median in-band power.
 */
export function subharmonicBin(freqs, pxx, idx, k, ratio, floor) {
  if (!(ratio > 0) || idx.length < 3) return k;
  const df = freqs[1] - freqs[0];
  const half = freqs[k] / 2;
  let j = -1;
  for (const i of idx) if (Math.abs(freqs[i] - half) <= df * 1.000001 && (j < 0 || pxx[i] > pxx[j])) j = i;
  if (j < 0) return k;
  const loN = pxx[Math.max(j - 1, 0)];
  const hiN = pxx[Math.min(j + 1, pxx.length - 1)];
  if (pxx[j] < loN || pxx[j] < hiN) return k;
  if (pxx[j] < ratio * pxx[k] || pxx[j] < floor * medianOf(idx.map((i) => pxx[i]))) return k;
  return j;
}

/** Unscaled power of the same estimator at m frequencies from fLo to fHi (scipy's zoom_fft, directly). */
export function zoomPower(x, fs, fLo, fHi, m, kind) {
  const freqs = Float64Array.from({ length: m }, (_, i) => fLo + ((fHi - fLo) * i) / (m - 1));
  if (kind === 'periodogram') return { freqs, power: dtftPower(x, 0, new Float64Array(x.length).fill(1), freqs, fs) };
  const { starts, w } = welchSegments(x.length);
  const power = new Float64Array(m);
  for (const s of starts) dtftPower(x, s, w, freqs, fs).forEach((v, i) => (power[i] += v / starts.length));
  return { freqs, power };
}

/**
 * Frequency (Hz) of the PSD maximum within [lowHz, highHz] (mmrphys.signals.spectrum.peak_frequency
 * with refine=True): the top bin, the harmonic check when ratio > 0, then 201 points of the same
 * estimator's spectrum over one bin either side and a parabola through the top. NaN when no bin is
 * in the band.
 */
export function peakFrequency(x, fs, band, { method = 'periodogram', welchAfterS = 30, ratio = 0, floor = 10 } = {}) {
  const [lo, hi] = band;
  const kind = psdKind(x.length, fs, method, welchAfterS);
  const { freqs, pxx } = spectrum(x, fs, kind);
  const idx = [];
  for (let i = 0; i < freqs.length; i++) if (freqs[i] >= lo && freqs[i] <= hi) idx.push(i);
  if (!idx.length) return NaN;
  let k = idx[0];
  for (const i of idx) if (pxx[i] > pxx[k]) k = i;
  if (ratio > 0) k = subharmonicBin(freqs, pxx, idx, k, ratio, floor);
  const fPeak = freqs[k];
  const df = freqs[1] - freqs[0];
  const fLo = Math.max(lo, fPeak - df);
  const fHi = Math.min(hi, fPeak + df);
  if (fHi <= fLo) return fPeak;
  const z = zoomPower(x, fs, fLo, fHi, 201, kind);
  let j = 0;
  for (let i = 1; i < z.power.length; i++) if (z.power[i] > z.power[j]) j = i;
  if (j > 0 && j < z.power.length - 1) {
    const [y0, y1, y2] = [z.power[j - 1], z.power[j], z.power[j + 1]];
    const den = y0 - 2 * y1 + y2;
    const shift = den < 0 ? (0.5 * (y0 - y2)) / den : 0;
    return z.freqs[j] + shift * (z.freqs[1] - z.freqs[0]);
  }
  return z.freqs[j];
}

/**
 * Rate per minute of a waveform with a preset (mmrphys.signals.heart_rate / respiratory_rate with
 * refine on, spectral method): preprocess, then the PSD peak in the preset's band, with the harmonic
 * check for 'hr'. NaN for a constant input or one of fewer than minSamples(preset) samples.
 */
export function rate(x, fs, preset, kind) {
  if (x.length < minSamples(preset) || isConstant(x)) return NaN;
  const y = preprocess(x, fs, preset, kind);
  if (isConstant(y)) return NaN;
  return 60 * peakFrequency(y, fs, presetBand(preset, kind), {
    method: preset.psd,
    welchAfterS: preset.welch_after_s,
    ratio: kind === 'hr' ? preset.subharmonic_ratio : 0,
    floor: preset.subharmonic_floor,
  });
}

/**
 * Quality index of an already filtered signal (mmrphys.signals.quality.spectral_concentration): the
 * share of in-band periodogram power within halfWidthHz of the peak (and of its 2nd harmonic when
 * `harmonic`, the peak then chosen by the harmonic check), rescaled so that a flat spectrum scores 0
 * and a pure tone 1; 0 for a constant signal.
 */
export function spectralConcentration(y, fs, band, halfWidthHz, harmonic, preset) {
  if (isConstant(y)) return 0;
  const { freqs, pxx } = spectrum(y, fs, 'periodogram');
  const [lo, hi] = band;
  const fb = [];
  const pb = [];
  for (let i = 0; i < freqs.length; i++) {
    if (freqs[i] >= lo && freqs[i] <= hi) {
      fb.push(freqs[i]);
      pb.push(pxx[i]);
    }
  }
  const total = pb.reduce((s, v) => s + v, 0);
  if (pb.length < 2 || total <= 0) return 0;
  let k = 0;
  for (let i = 1; i < pb.length; i++) if (pb[i] > pb[k]) k = i;
  if (harmonic) k = subharmonicBin(fb, pb, pb.map((_, i) => i), k, preset.subharmonic_ratio, preset.subharmonic_floor);
  let near = 0;
  let count = 0;
  for (let i = 0; i < fb.length; i++) {
    if (Math.abs(fb[i] - fb[k]) <= halfWidthHz || (harmonic && Math.abs(fb[i] - 2 * fb[k]) <= halfWidthHz)) {
      near += pb[i];
      count++;
    }
  }
  const r0 = count / fb.length;
  if (r0 >= 1) return 0;
  return Math.min(1, Math.max(0, (near / total - r0) / (1 - r0)));
}

/**
 * Quality index in [0, 1] (mmrphys.signals.signal_quality): the preset's band-pass, then
 * spectralConcentration (with the harmonic for 'hr'). NaN when too short.
 */
export function signalQuality(x, fs, preset, kind, halfWidthHz) {
  if (x.length < minSamples(preset)) return NaN;
  const y = preprocess(x, fs, preset, kind);
  return spectralConcentration(y, fs, presetBand(preset, kind), halfWidthHz, kind === 'hr', preset);
}

/** Label of a quality index with the server's thresholds {good, fair}: 'good' | 'fair' | 'poor' | 'none'. */
export function qualityLabel(index, thresholds) {
  if (!Number.isFinite(index)) return 'none';
  if (index >= thresholds.good) return 'good';
  if (index >= thresholds.fair) return 'fair';
  return 'poor';
}

/**
 * Linear interpolation of samples taken at increasing times `t` (s) onto a uniform grid at `fs` from
 * t[0]: frames dropped under load would otherwise bend the spectrum.
 */
export function resampleUniform(x, t, fs) {
  const n = Math.max(1, Math.floor((t[t.length - 1] - t[0]) * fs) + 1);
  const out = new Float64Array(n);
  let j = 0;
  for (let i = 0; i < n; i++) {
    const ti = t[0] + i / fs;
    while (j < t.length - 2 && t[j + 1] < ti) j++;
    const span = t[j + 1] - t[j];
    const a = span > 0 ? Math.min(1, Math.max(0, (ti - t[j]) / span)) : 0;
    out[i] = x[j] + a * ((x[j + 1] ?? x[j]) - x[j]);
  }
  return out;
}

/** Median of a list of numbers (NaN for an empty list). */
export function median(values) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
}

// ---------------------------------------------------------------------------------------------------
// Breathing from a pulse (mmrphys.signals.respiration.respiration_from_bvp) and the pulse it is read
// from when a model runs: POS on the mean colour of the central part of the model's crops, as the
// main job's ModelEstimator(rr_from="pulse") computes it (mmrphys.signals.unsupervised.pos). Every
// constant (POS window, detrend, band; peak spacing and prominence; fewest beats; the fusion's
// window) comes from /api/model.json settings.respiration. tests/web/test_web_dsp.py compares these
// functions with the Python ones on the same arrays.
// ---------------------------------------------------------------------------------------------------

/**
 * Smoothness-priors detrend (mmrphys.signals.filters.detrend): x - (I + lam^2 D^T D)^-1 x with D the
 * second difference, the symmetric pentadiagonal system solved by an LDL^T factorisation in O(n).
 */
export function detrend(x, lam) {
  const n = x.length;
  if (n < 3) throw new Error(`detrend input: ${n} samples, need at least 3`);
  const l2 = lam * lam;
  // bands of I + lam^2 D^T D: a0 (diagonal), a1 (first off-diagonal), a2 (second)
  const a0 = new Float64Array(n).fill(1);
  const a1 = new Float64Array(n);
  const a2 = new Float64Array(n);
  const dr = [1, -2, 1];
  for (let r = 0; r + 2 < n; r++) {
    for (let i = 0; i < 3; i++) {
      a0[r + i] += l2 * dr[i] * dr[i];
      if (i < 2) a1[r + i] += l2 * dr[i] * dr[i + 1];
    }
    a2[r] += l2 * dr[0] * dr[2];
  }
  const d = new Float64Array(n);
  const e1 = new Float64Array(n); // L[i+1][i]
  const e2 = new Float64Array(n); // L[i+2][i]
  for (let i = 0; i < n; i++) {
    let di = a0[i];
    if (i >= 1) di -= e1[i - 1] * e1[i - 1] * d[i - 1];
    if (i >= 2) di -= e2[i - 2] * e2[i - 2] * d[i - 2];
    d[i] = di;
    if (i + 1 < n) e1[i] = (a1[i] - (i >= 1 ? e2[i - 1] * e1[i - 1] * d[i - 1] : 0)) / di;
    if (i + 2 < n) e2[i] = a2[i] / di;
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = x[i] - (i >= 1 ? e1[i - 1] * y[i - 1] : 0) - (i >= 2 ? e2[i - 2] * y[i - 2] : 0);
  const trend = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    trend[i] = y[i] / d[i] - (i + 1 < n ? e1[i] * trend[i + 1] : 0) - (i + 2 < n ? e2[i] * trend[i + 2] : 0);
  }
  return Float64Array.from(x, (v, i) => v - trend[i]);
}

/**
 * POS with the toolbox's post-steps (mmrphys.signals.unsupervised.pos): windows [m, m + w) for
 * m = 0 .. n - w - 1, w = ceil(window_s * fs), of the temporally normalised colour projected on
 * (G - B, G + B - 2R), h = S1 + (sd1 / sd2) S2 zero-meaned and overlap-added; then the detrend and
 * a Butterworth band-pass (filtfilt). `rgb`: [r, g, b] arrays of equal length; `pulse`:
 * settings.respiration.pulse. Throws when too short or a channel mean is not positive.
 */
export function posPulse(rgb, fs, pulse) {
  const [r, g, b] = rgb;
  const n = r.length;
  const w = Math.ceil(pulse.window_s * fs);
  if (n <= w) throw new Error(`pos: ${n} frames, need more than one ${pulse.window_s} s window (${w} frames)`);
  const out = new Float64Array(n);
  const s1 = new Float64Array(w);
  const s2 = new Float64Array(w);
  for (let m = 0; m < n - w; m++) {
    let mr = 0;
    let mg = 0;
    let mb = 0;
    for (let j = m; j < m + w; j++) {
      mr += r[j];
      mg += g[j];
      mb += b[j];
    }
    mr /= w;
    mg /= w;
    mb /= w;
    if (!(mr > 0 && mg > 0 && mb > 0)) throw new Error('pos: a window has a zero channel mean');
    for (let j = 0; j < w; j++) {
      const cr = r[m + j] / mr;
      const cg = g[m + j] / mg;
      const cb = b[m + j] / mb;
      s1[j] = cg - cb;
      s2[j] = -2 * cr + cg + cb;
    }
    const sd1 = meanStd(s1)[1];
    const sd2 = meanStd(s2)[1];
    const ratio = sd2 > 0 ? sd1 / sd2 : 0;
    let hm = 0;
    for (let j = 0; j < w; j++) hm += s1[j] + ratio * s2[j];
    hm /= w;
    for (let j = 0; j < w; j++) out[m + j] += s1[j] + ratio * s2[j] - hm;
  }
  return bandpass(detrend(out, pulse.detrend_lambda), fs, pulse.band_hz[0], pulse.band_hz[1], pulse.order);
}

/** numpy.percentile(values, q) with its default (linear) interpolation. */
export function percentile(values, q) {
  const s = Float64Array.from(values).sort();
  const v = (q / 100) * (s.length - 1);
  const lo = Math.floor(v);
  const hi = Math.min(lo + 1, s.length - 1);
  const t = v - lo;
  const diff = s[hi] - s[lo];
  return t >= 0.5 ? s[hi] - diff * (1 - t) : s[lo] + diff * t; // numpy's _lerp
}

/** scipy.signal.find_peaks(x, distance=distance, prominence=0): {peaks, prominences}. */
export function findPeaks(x, distance) {
  const n = x.length;
  let peaks = [];
  for (let i = 1; i < n - 1; i++) {
    if (x[i - 1] < x[i]) {
      let ahead = i + 1;
      while (ahead < n - 1 && x[ahead] === x[i]) ahead++;
      if (x[ahead] < x[i]) {
        peaks.push((i + ahead - 1) >> 1); // the middle of a plateau
        i = ahead;
      }
    }
  }
  if (distance > 1 && peaks.length > 1) {
    const dist = Math.ceil(distance);
    const keep = peaks.map(() => true);
    const order = peaks.map((_, i) => i).sort((a, b) => x[peaks[a]] - x[peaks[b]] || a - b);
    for (let o = order.length - 1; o >= 0; o--) {
      const j = order[o];
      if (!keep[j]) continue;
      for (let k = j - 1; k >= 0 && peaks[j] - peaks[k] < dist; k--) keep[k] = false;
      for (let k = j + 1; k < peaks.length && peaks[k] - peaks[j] < dist; k++) keep[k] = false;
    }
    peaks = peaks.filter((_, i) => keep[i]);
  }
  const prominences = peaks.map((p) => {
    let left = x[p];
    for (let i = p; i >= 0 && x[i] <= x[p]; i--) if (x[i] < left) left = x[i];
    let right = x[p];
    for (let i = p; i < n && x[i] <= x[p]; i++) if (x[i] < right) right = x[i];
    return x[p] - Math.max(left, right);
  });
  return { peaks, prominences };
}

/**
 * Peak positions (samples, fractional) of a filtered waveform (mmrphys.signals.rates.detect_peaks
 * with refine=True): at least peak_min_spacing of the shortest period allowed by maxHz apart, a
 * prominence of at least peak_min_prominence of the peak_prominence_percentile-th percentile one,
 * positions refined by a parabola through the top three samples. `mod`: settings.respiration.modulation.
 */
export function detectPeaks(x, fs, maxHz, mod) {
  const distance = Math.max(1, Math.trunc((mod.peak_min_spacing * fs) / maxHz));
  const { peaks, prominences } = findPeaks(x, distance);
  if (!peaks.length) return new Float64Array(0);
  const floor = mod.peak_min_prominence * percentile(prominences, mod.peak_prominence_percentile);
  const kept = peaks.filter((_, i) => prominences[i] >= floor);
  return Float64Array.from(kept, (p) => {
    if (p <= 0 || p >= x.length - 1) return p;
    const [y0, y1, y2] = [x[p - 1], x[p], x[p + 1]];
    const den = y0 - 2 * y1 + y2;
    const shift = den < 0 ? (0.5 * (y0 - y2)) / den : 0;
    return p + Math.min(0.5, Math.max(-0.5, shift));
  });
}

/** numpy.interp(pos, arange(x.length), x) at one fractional sample position. */
function valueAt(x, pos) {
  if (pos <= 0) return x[0];
  if (pos >= x.length - 1) return x[x.length - 1];
  const i = Math.floor(pos);
  return x[i] + (pos - i) * (x[i + 1] - x[i]);
}

/**
 * scipy.interpolate.interp1d(t, v, kind='cubic' (4+ points, else 'linear'), bounds_error=False,
 * fill_value=(v[0], v[-1])) evaluated at i / fs, i = 0 .. n-1. The cubic is scipy's not-a-knot
 * spline, solved here for its second derivatives M: the not-a-knot conditions (third derivative
 * continuous at t[1] and t[-2]) express M[0] and M[-1] through their neighbours, which leaves a
 * strictly diagonally dominant tridiagonal system for M[1..-2] (no pivoting needed).
 */
export function splineToGrid(t, v, n, fs) {
  const m = t.length;
  const out = new Float64Array(n);
  const M = new Float64Array(m);
  const cubic = m >= 4;
  if (cubic) {
    const h = Float64Array.from({ length: m - 1 }, (_, i) => t[i + 1] - t[i]);
    const k = m - 2; // unknowns M[1..m-2]
    const sub = new Float64Array(k);
    const dia = new Float64Array(k);
    const sup = new Float64Array(k);
    const rhs = new Float64Array(k);
    for (let j = 0; j < k; j++) {
      const i = j + 1;
      sub[j] = h[i - 1];
      dia[j] = 2 * (h[i - 1] + h[i]);
      sup[j] = h[i];
      rhs[j] = 6 * ((v[i + 1] - v[i]) / h[i] - (v[i] - v[i - 1]) / h[i - 1]);
    }
    // M[0] = ((h0 + h1) M[1] - h0 M[2]) / h1 into the first row
    dia[0] += (h[0] * (h[0] + h[1])) / h[1];
    sup[0] -= (h[0] * h[0]) / h[1];
    // M[m-1] = ((h[m-3] + h[m-2]) M[m-2] - h[m-2] M[m-3]) / h[m-3] into the last row
    const ha = h[m - 3];
    const hb = h[m - 2];
    dia[k - 1] += (hb * (ha + hb)) / ha;
    sub[k - 1] -= (hb * hb) / ha;
    for (let j = 1; j < k; j++) {
      const f = sub[j] / dia[j - 1];
      dia[j] -= f * sup[j - 1];
      rhs[j] -= f * rhs[j - 1];
    }
    M[k] = rhs[k - 1] / dia[k - 1];
    for (let j = k - 2; j >= 0; j--) M[j + 1] = (rhs[j] - sup[j] * M[j + 2]) / dia[j];
    M[0] = ((h[0] + h[1]) * M[1] - h[0] * M[2]) / h[1];
    M[m - 1] = ((ha + hb) * M[m - 2] - hb * M[m - 3]) / ha;
  }
  let s = 0;
  for (let i = 0; i < n; i++) {
    const x = i / fs;
    if (x < t[0]) out[i] = v[0];
    else if (x > t[m - 1]) out[i] = v[m - 1];
    else {
      while (s < m - 2 && x > t[s + 1]) s++;
      const hh = t[s + 1] - t[s];
      const a = t[s + 1] - x;
      const b = x - t[s];
      out[i] = cubic
        ? (M[s] * a * a * a + M[s + 1] * b * b * b) / (6 * hh) + (v[s] / hh - (M[s] * hh) / 6) * a
          + (v[s + 1] / hh - (M[s + 1] * hh) / 6) * b
        : v[s] + (b / hh) * (v[s + 1] - v[s]);
    }
  }
  return out;
}

function zscore(x) {
  const [m, sd] = meanStd(x);
  return sd > 0 ? Float64Array.from(x, (v) => (v - m) / sd) : new Float64Array(x.length);
}

/**
 * The breathing modulations of a pulse (mmrphys.signals.respiration.bvp_modulations): beat amplitude
 * (AM), inter-beat interval (FM) and baseline (BM), each on the sample grid, band-passed to the
 * preset's RR band and z-scored. Throws when the pulse is constant, too short or has too few beats.
 */
export function bvpModulations(bvp, fs, preset, mod) {
  const raw = Float64Array.from(bvp);
  if (raw.length < minSamples(preset)) throw new Error(`bvp: ${raw.length} samples, need at least ${minSamples(preset)}`);
  if (isConstant(raw)) throw new Error('bvp is constant: no beats to derive respiration from');
  const pulse = preprocess(raw, fs, preset, 'hr');
  const hi = preset.hr_band[1];
  const peaks = detectPeaks(pulse, fs, hi, mod);
  const troughs = detectPeaks(pulse.map((v) => -v), fs, hi, mod);
  if (peaks.length < mod.min_beats || troughs.length < mod.min_troughs) {
    throw new Error(`bvp: only ${peaks.length} beats found, need at least ${mod.min_beats} to derive respiration`);
  }
  const pk = [];
  const tr = [];
  let j = 0;
  for (const p of peaks) {
    while (j < troughs.length && troughs[j] < p) j++; // the last trough before the peak: troughs[j - 1]
    if (j > 0) {
      pk.push(p);
      tr.push(troughs[j - 1]);
    }
  }
  if (pk.length < mod.min_beats) throw new Error(`bvp: only ${pk.length} complete beats found, need at least ${mod.min_beats}`);
  const tPk = pk.map((p) => p / fs);
  const series = {
    am: [tPk, pk.map((p, i) => valueAt(pulse, p) - valueAt(pulse, tr[i]))],
    fm: [tPk.slice(1), tPk.slice(1).map((tt, i) => tt - tPk[i])],
    bm: [tPk, pk.map((p, i) => (valueAt(raw, p) + valueAt(raw, tr[i])) / 2)],
  };
  const [lo, hiRr] = preset.rr_band;
  const out = {};
  for (const [name, [t, v]] of Object.entries(series)) {
    const grid = splineToGrid(t, v, raw.length, fs);
    if (isConstant(grid)) {
      out[name] = new Float64Array(raw.length);
      continue;
    }
    const m = meanStd(grid)[0];
    out[name] = zscore(bandpass(grid.map((x) => x - m), fs, lo, hiRr, preset.order));
  }
  return out;
}

/**
 * A respiration waveform from a pulse (mmrphys.signals.respiration.respiration_from_bvp, method
 * "fused"): the three modulations, each weighted by its quality index (the spectral concentration in
 * the RR band within fusion_half_width_hz, no harmonic), sign-aligned to the best one, summed and
 * z-scored. Feed it to rate(..., 'rr'). Throws as bvpModulations.
 */
export function respirationFromBvp(bvp, fs, preset, mod) {
  const mods = bvpModulations(bvp, fs, preset, mod);
  const names = Object.keys(mods);
  const q = {};
  for (const m of names) q[m] = spectralConcentration(mods[m], fs, preset.rr_band, mod.fusion_half_width_hz, false, preset);
  let best = names[0];
  for (const m of names) if (q[m] > q[best]) best = m;
  const fused = new Float64Array(mods[best].length);
  for (const m of names) {
    let dot = 0;
    for (let i = 0; i < fused.length; i++) dot += mods[m][i] * mods[best][i];
    const sign = dot >= 0 ? 1 : -1;
    for (let i = 0; i < fused.length; i++) fused[i] += q[m] * sign * mods[m][i];
  }
  return zscore(fused);
}

/**
 * Incremental POS (Wang et al. 2017): every new RGB mean adds the projected, normalised window of the
 * last `l` (1.6 s) samples to an overlap-add buffer. `push` returns nothing; `signal()` the BVP so far.
 */
export class PosTracker {
  constructor(fs, capacity) {
    this.l = Math.max(8, Math.round(1.6 * fs));
    this.rgb = new Float64Array(capacity * 3);
    this.h = new Float64Array(capacity);
    this.n = 0;
    this.capacity = capacity;
  }

  push(r, g, b) {
    if (this.n >= this.capacity) return;
    const n = this.n++;
    this.rgb[3 * n] = r;
    this.rgb[3 * n + 1] = g;
    this.rgb[3 * n + 2] = b;
    const l = this.l;
    if (n + 1 < l) return;
    const s = n + 1 - l;
    let mr = 0;
    let mg = 0;
    let mb = 0;
    for (let i = s; i <= n; i++) {
      mr += this.rgb[3 * i];
      mg += this.rgb[3 * i + 1];
      mb += this.rgb[3 * i + 2];
    }
    mr = mr / l || 1;
    mg = mg / l || 1;
    mb = mb / l || 1;
    const s1 = new Float64Array(l);
    const s2 = new Float64Array(l);
    for (let i = 0; i < l; i++) {
      const k = s + i;
      const cr = this.rgb[3 * k] / mr;
      const cg = this.rgb[3 * k + 1] / mg;
      const cb = this.rgb[3 * k + 2] / mb;
      s1[i] = cg - cb;
      s2[i] = cg + cb - 2 * cr;
    }
    const sd = (a) => {
      let m = 0;
      for (const v of a) m += v;
      m /= a.length;
      let q = 0;
      for (const v of a) q += (v - m) ** 2;
      return Math.sqrt(q / a.length);
    };
    const alpha = sd(s1) / (sd(s2) || 1);
    let hm = 0;
    const hw = new Float64Array(l);
    for (let i = 0; i < l; i++) {
      hw[i] = s1[i] + alpha * s2[i];
      hm += hw[i];
    }
    hm /= l;
    for (let i = 0; i < l; i++) this.h[s + i] += hw[i] - hm;
  }

  signal() {
    return this.h.subarray(0, this.n);
  }
}

/**
 * Overlap-add of per-window outputs onto one timeline (mmrphys.tensors.OverlapAdd): each window's
 * output is z-scored (the model's scale is arbitrary per window) and weighted by a Hann taper with a
 * floor, 0.1 + 0.9 * hanning(n) (window edges, where the model has least context, count less).
 */
export class Stitcher {
  constructor(capacity) {
    this.sum = new Float64Array(capacity);
    this.weight = new Float64Array(capacity);
    this.capacity = capacity;
    this.end = 0; // one past the last sample that any window has covered
  }

  add(start, values) {
    const n = values.length;
    const [m, sd] = meanStd(values);
    for (let i = 0; i < n; i++) {
      const k = start + i;
      if (k < 0 || k >= this.capacity) continue;
      const z = sd > 0 ? (values[i] - m) / sd : values[i] - m;
      const w = n < 3 ? 1 : 0.1 + 0.9 * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (n - 1)));
      this.sum[k] += w * z;
      this.weight[k] += w;
    }
    this.end = Math.max(this.end, Math.min(this.capacity, start + n));
  }

  /** Stitched values for samples [from, end); 0 where no window reached. */
  values(from = 0) {
    const out = new Float64Array(Math.max(0, this.end - from));
    for (let k = from; k < this.end; k++) out[k - from] = this.weight[k] > 0 ? this.sum[k] / this.weight[k] : 0;
    return out;
  }
}
