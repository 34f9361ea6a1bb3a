// Signal processing used in the browser: FFT, zero-phase band-pass, spectral rates with an SNR,
// POS (the fallback method) and overlap-add stitching of model windows. Plain typed arrays in/out,
// sampling rate `fs` in Hz, rates in beats/breaths per minute.

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

/** Copy of x minus its least-squares line. */
export function detrendLinear(x) {
  const n = x.length;
  const out = new Float64Array(n);
  if (n < 2) return out;
  const tm = (n - 1) / 2;
  let xm = 0;
  for (let i = 0; i < n; i++) xm += x[i];
  xm /= n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (i - tm) * (x[i] - xm);
    sxx += (i - tm) * (i - tm);
  }
  const slope = sxy / sxx;
  for (let i = 0; i < n; i++) out[i] = x[i] - xm - slope * (i - tm);
  return out;
}

/** Zero-mean, unit-variance copy (zeros stay zeros when the input is constant). */
export function zscore(x) {
  const n = x.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += x[i];
  m /= n || 1;
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i] - m) ** 2;
  const sd = Math.sqrt(v / (n || 1)) || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (x[i] - m) / sd;
  return out;
}

/**
 * Zero-phase band-pass in the frequency domain: reflect-pad, FFT, a mask with 0.05 Hz cosine edges,
 * inverse FFT. Used for display; the rates come from the spectrum directly.
 */
export function bandpass(x, fs, lowHz, highHz) {
  const n = x.length;
  if (n < 8) return Float32Array.from(x);
  const pad = Math.min(n - 1, Math.round(2 * fs));
  const total = n + 2 * pad;
  const nfft = nextPow2(total);
  const re = new Float64Array(nfft);
  const im = new Float64Array(nfft);
  const d = detrendLinear(x);
  for (let i = 0; i < total; i++) {
    let k = i - pad;
    if (k < 0) k = -k;
    if (k >= n) k = 2 * (n - 1) - k;
    re[i] = d[k];
  }
  fft(re, im);
  const edge = 0.05;
  for (let i = 0; i < nfft; i++) {
    const f = (Math.min(i, nfft - i) * fs) / nfft;
    let g = 0;
    if (f >= lowHz && f <= highHz) g = 1;
    else if (f > lowHz - edge && f < lowHz) g = 0.5 - 0.5 * Math.cos((Math.PI * (f - lowHz + edge)) / edge);
    else if (f > highHz && f < highHz + edge) g = 0.5 + 0.5 * Math.cos((Math.PI * (f - highHz)) / edge);
    re[i] *= g;
    im[i] *= g;
  }
  fft(re, im, true);
  return Float32Array.from(re.subarray(pad, pad + n));
}

/**
 * Dominant frequency of x within [lowHz, highHz]: linear detrend, Hann window, zero padding to at
 * least 8x, parabolic refinement of the peak. Returns {bpm, hz, snrDb}; snrDb compares the power
 * within +-0.1 Hz of the peak and of its second harmonic with all other power between lowHz and
 * min(2 * highHz, Nyquist). `harmonicCheck` prefers the fundamental over a stronger second harmonic.
 */
export function spectralRate(x, fs, lowHz, highHz, harmonicCheck = false) {
  const n = x.length;
  const nfft = nextPow2(Math.max(8 * n, 4096));
  const re = new Float64Array(nfft);
  const im = new Float64Array(nfft);
  const d = detrendLinear(x);
  for (let i = 0; i < n; i++) re[i] = d[i] * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / Math.max(1, n - 1)));
  fft(re, im);
  const half = nfft / 2;
  const p = new Float64Array(half + 1);
  for (let i = 0; i <= half; i++) p[i] = re[i] * re[i] + im[i] * im[i];
  const df = fs / nfft;
  const lo = Math.max(1, Math.ceil(lowHz / df));
  const hi = Math.min(half - 1, Math.floor(highHz / df));
  let best = lo;
  for (let i = lo; i <= hi; i++) if (p[i] > p[best]) best = i;
  if (harmonicCheck) {
    // A pulse wave with a sharp upstroke can carry more power at 2x HR than at HR: when a local peak
    // at half the frequency holds at least a quarter of the top peak's power, it is the heart rate.
    const half = Math.round(best / 2);
    const w = Math.max(1, Math.round(0.08 / df));
    let sub = -1;
    for (let i = Math.max(lo, half - w); i <= Math.min(hi, half + w); i++) if (sub < 0 || p[i] > p[sub]) sub = i;
    if (sub > lo && p[sub] >= p[sub - 1] && p[sub] >= p[sub + 1] && p[sub] >= 0.25 * p[best]) best = sub;
  }
  let shift = 0;
  if (best > lo && best < hi) {
    const a = p[best - 1];
    const b = p[best];
    const c = p[best + 1];
    const den = a - 2 * b + c;
    if (den !== 0) shift = Math.max(-0.5, Math.min(0.5, (0.5 * (a - c)) / den));
  }
  const hz = (best + shift) * df;
  const top = Math.min(half, Math.floor(Math.min(2 * highHz, fs / 2) / df));
  const near = 0.1 / df;
  let signal = 0;
  let noise = 0;
  for (let i = lo; i <= top; i++) {
    const f = i;
    const inPeak = Math.abs(f - (best + shift)) <= near || Math.abs(f - 2 * (best + shift)) <= near;
    if (inPeak) signal += p[i];
    else noise += p[i];
  }
  const snrDb = 10 * Math.log10((signal + 1e-12) / (noise + 1e-12));
  return { hz, bpm: hz * 60, snrDb };
}

/** Quality label of a spectral SNR in dB (bands calibrated on clean synthetic and webcam traces). */
export function qualityLabel(snrDb) {
  if (!Number.isFinite(snrDb)) return 'none';
  if (snrDb >= 3) return 'good';
  if (snrDb >= -3) return 'fair';
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
 * Overlap-add of per-window outputs onto one timeline. Each window's output is z-scored (the model's
 * scale is arbitrary per window) and weighted by a Hann taper (edges of a window are least reliable).
 */
export class Stitcher {
  constructor(capacity) {
    this.sum = new Float64Array(capacity);
    this.weight = new Float64Array(capacity);
    this.capacity = capacity;
    this.end = 0; // one past the last sample that any window has covered
  }

  add(start, values) {
    const z = zscore(values);
    const n = z.length;
    for (let i = 0; i < n; i++) {
      const k = start + i;
      if (k < 0 || k >= this.capacity) continue;
      const w = 0.02 + 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 0.5)) / n);
      this.sum[k] += w * z[i];
      this.weight[k] += w;
    }
    this.end = Math.max(this.end, Math.min(this.capacity, start + n));
  }

  /** Stitched values for samples [from, end). */
  values(from = 0) {
    const out = new Float32Array(Math.max(0, this.end - from));
    for (let k = from; k < this.end; k++) out[k - from] = this.weight[k] > 0 ? this.sum[k] / this.weight[k] : 0;
    return out;
  }
}
