// Unit tests of the page's signal processing (node --test; no browser needed). The comparison with
// the Python package on the same inputs is tests/web/test_web_dsp.py (through tools/golden-run.mjs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  PosTracker, Stitcher, bandpass, butterBandpass, detrend, median, posPulse, qualityLabel, rate, resampleUniform,
  respirationFromBvp, signalQuality, splineToGrid,
} from '../src/dsp.js';

const fs = 30;
const wave = (n, f, fn = Math.sin) => Float64Array.from({ length: n }, (_, i) => fn((2 * Math.PI * f * i) / fs));
// The page receives its preset from the server (/api/model.json settings.preset); a stand-in here.
const preset = {
  name: 'mmrphys', order: 2, hr_band: [0.6, 3.3], rr_band: [0.13, 0.5], detrend: false, psd: 'auto',
  welch_after_s: 30, rr_zscore: true, subharmonic_ratio: 0.3, subharmonic_floor: 10,
};

test('rate finds a pulse rate to a fraction of a bpm, and a clean pulse has a high quality index', () => {
  const x = wave(10 * fs, 1.2);
  assert.ok(Math.abs(rate(x, fs, preset, 'hr') - 72) < 0.1);
  const q = signalQuality(x, fs, preset, 'hr', 0.1);
  assert.ok(q > 0.85, `${q}`);
  assert.equal(qualityLabel(q, { good: 0.5, fair: 0.3 }), 'good');
});

test('harmonic check prefers the fundamental over a stronger second harmonic', () => {
  const x = Float64Array.from({ length: 20 * fs }, (_, i) => {
    const t = i / fs;
    return 0.6 * Math.sin(2 * Math.PI * 1.2 * t) + Math.sin(2 * Math.PI * 2.4 * t + 0.5);
  });
  assert.ok(Math.abs(rate(x, fs, { ...preset, subharmonic_ratio: 0 }, 'hr') - 144) < 0.5);
  assert.ok(Math.abs(rate(x, fs, preset, 'hr') - 72) < 0.5);
  // A clean fast pulse without a sub-harmonic stays where it is.
  assert.ok(Math.abs(rate(wave(20 * fs, 2.4), fs, preset, 'hr') - 144) < 0.5);
});

test('noise gets a low quality index', () => {
  let seed = 1;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
  const x = Float64Array.from({ length: 10 * fs }, rnd);
  assert.ok(signalQuality(x, fs, preset, 'hr', 0.1) < 0.3);
});

test('breathing rate from a respiration wave with a pulse on top', () => {
  const x = Float64Array.from({ length: 20 * fs }, (_, i) => Math.sin(2 * Math.PI * 0.25 * (i / fs)) + 0.3 * Math.sin(2 * Math.PI * 1.2 * (i / fs)));
  assert.ok(Math.abs(rate(x, fs, preset, 'rr') - 15) < 0.2);
});

test('Butterworth band-pass: unit gain in the band, blocks DC, zero phase', () => {
  const { b, a } = butterBandpass(2, 0.6, 3.3, fs);
  assert.equal(b.length, 5);
  assert.equal(a[0], 1);
  const gainAt = (f) => {
    let nr = 0, ni = 0, dr = 0, di = 0;
    for (let k = 0; k < 5; k++) {
      const w = (-2 * Math.PI * f * k) / fs;
      nr += b[k] * Math.cos(w); ni += b[k] * Math.sin(w);
      dr += a[k] * Math.cos(w); di += a[k] * Math.sin(w);
    }
    return Math.hypot(nr, ni) / Math.hypot(dr, di);
  };
  // gain 1 at the centre (geometric mean of the pre-warped edges), -3 dB at the edges themselves
  const centre = (fs / Math.PI) * Math.atan(Math.sqrt(Math.tan((Math.PI * 0.6) / fs) * Math.tan((Math.PI * 3.3) / fs)));
  assert.ok(Math.abs(gainAt(centre) - 1) < 1e-9);
  assert.ok(Math.abs(gainAt(0.6) - Math.SQRT1_2) < 1e-9 && Math.abs(gainAt(3.3) - Math.SQRT1_2) < 1e-9);
  assert.ok(gainAt(0) < 1e-12);
  // filtfilt keeps the pulse's phase and removes drift and breathing
  const n = 20 * fs;
  const x = Float64Array.from({ length: n }, (_, i) => Math.sin(2 * Math.PI * 1.5 * (i / fs)) + 3 * Math.sin(2 * Math.PI * 0.1 * (i / fs)) + 0.05 * i);
  const y = bandpass(x, fs, 0.6, 3.3, 4);
  const ref = wave(n, 1.5);
  let err = 0;
  for (let i = 3 * fs; i < n - 3 * fs; i++) err = Math.max(err, Math.abs(y[i] - ref[i]));
  assert.ok(err < 0.15, `max error ${err}`);
});

test('POS recovers the pulse from skin-tone RGB means with a common illumination drift', () => {
  const pos = new PosTracker(fs, 30 * fs);
  for (let i = 0; i < 20 * fs; i++) {
    const t = i / fs;
    const light = 1 + 0.05 * Math.sin(2 * Math.PI * 0.05 * t);
    const p = 0.004 * Math.sin(2 * Math.PI * 1.3 * t);
    pos.push(180 * light * (1 - 0.3 * p), 120 * light * (1 - p), 100 * light * (1 - 0.5 * p));
  }
  assert.ok(Math.abs(rate(pos.signal(), fs, preset, 'hr') - 78) < 1);
});

test('stitching overlapping windows reproduces a continuous wave', () => {
  const n = 600;
  const truth = wave(n, 1.0);
  const st = new Stitcher(n);
  for (let s = 0; s + 180 <= n; s += 90) st.add(s, truth.slice(s, s + 180).map((v) => 5 * v + 2));
  const y = st.values(0);
  assert.equal(y.length, 540);
  let err = 0;
  for (let i = 0; i < 540; i++) err = Math.max(err, Math.abs(y[i] - Math.SQRT2 * truth[i]));
  assert.ok(err < 0.1, `${err}`); // each 180-sample window holds 3 whole periods: its z-score is sqrt(2) sin
  assert.equal(median([3, 1, 2]), 2);
});

test('resampling irregular frames onto a uniform grid keeps the rate', () => {
  // 30 fps with every 4th frame dropped and jitter: 22.5 frames/s on average.
  const t = [];
  for (let i = 0; i < 20 * fs; i++) if (i % 4 !== 3) t.push(i / fs + 0.004 * Math.sin(i));
  const x = t.map((v) => Math.sin(2 * Math.PI * 1.25 * v));
  const r = (t.length - 1) / (t[t.length - 1] - t[0]);
  const u = resampleUniform(x, t, r);
  assert.ok(Math.abs(u.length - t.length) <= 1);
  assert.ok(Math.abs(rate(u, r, preset, 'hr') - 75) < 0.5);
});

// The page receives these from the server (/api/model.json settings.respiration); a stand-in here.
const respiration = {
  pulse: { window_s: 1.6, band_hz: [0.75, 3.0], order: 1, detrend_lambda: 100, crop_border: 1 / 9 },
  modulation: {
    min_beats: 4, min_troughs: 2, fusion_half_width_hz: 0.05, peak_min_spacing: 0.7, peak_min_prominence: 0.3,
    peak_prominence_percentile: 90,
  },
};

// 72 bpm pulse that 15 /min breathing modulates in amplitude (30 %), rate (+-0.5 rad) and baseline.
function modulatedPulse(seconds, rrBpm = 15, hrBpm = 72) {
  return Float64Array.from({ length: seconds * fs }, (_, i) => {
    const t = i / fs;
    const br = Math.sin((2 * Math.PI * rrBpm * t) / 60);
    const ph = (2 * Math.PI * hrBpm * t) / 60 + 0.5 * br;
    return (1 + 0.3 * br) * (Math.sin(ph) + 0.4 * Math.sin(2 * ph + 0.7)) + 0.5 * br;
  });
}

test('breathing rate from the pulse modulation (AM + FM + baseline): 15 /min on a 72 bpm pulse', () => {
  for (const seconds of [60, 20]) {
    const rsp = respirationFromBvp(modulatedPulse(seconds), fs, preset, respiration.modulation);
    assert.equal(rsp.length, seconds * fs);
    const rr = rate(rsp, fs, preset, 'rr');
    assert.ok(Math.abs(rr - 15) < 1, `${seconds} s: ${rr}`);
  }
  // each modulation alone carries the breathing too
  const am = Float64Array.from(modulatedPulse(60), (_, i) => (1 + 0.3 * Math.sin((2 * Math.PI * 15 * i) / 60 / fs)) * Math.sin((2 * Math.PI * 1.2 * i) / fs));
  assert.ok(Math.abs(rate(respirationFromBvp(am, fs, preset, respiration.modulation), fs, preset, 'rr') - 15) < 1);
});

test('breathing from the pulse refuses a pulse with too few beats or none', () => {
  assert.throws(() => respirationFromBvp(modulatedPulse(2), fs, preset, respiration.modulation), /beats/);
  assert.throws(() => respirationFromBvp(new Float64Array(300).fill(1), fs, preset, respiration.modulation), /constant/);
});

test('the crop pulse: POS on a mean-colour trace gives the pulse, and its breathing', () => {
  const x = modulatedPulse(30, 12, 66);
  const rgb = [x.map((v) => 100 + 0.2 * v), x.map((v) => 120 + 0.8 * v), x.map((v) => 90 + 0.4 * v)];
  const pulse = posPulse(rgb, fs, respiration.pulse);
  assert.ok(Math.abs(rate(pulse, fs, preset, 'hr') - 66) < 1);
  const rr = rate(respirationFromBvp(pulse, fs, preset, respiration.modulation), fs, preset, 'rr');
  assert.ok(Math.abs(rr - 12) < 1, `${rr}`);
  assert.throws(() => posPulse([[1, 2], [1, 2], [1, 2]], fs, respiration.pulse), /window/);
});

test('detrend removes a slow trend and keeps a pulse; the spline passes through its knots', () => {
  const x = Float64Array.from({ length: 600 }, (_, i) => 1e-4 * i * i + Math.sin((2 * Math.PI * 1.2 * i) / fs));
  const y = detrend(x, 100);
  const mid = y.subarray(100, 500);
  assert.ok(Math.max(...mid) < 1.2 && Math.min(...mid) > -1.2, `${Math.min(...mid)} ${Math.max(...mid)}`);
  // a cubic is reproduced exactly by the not-a-knot spline, and held constant outside the knots
  const t = [0.1, 0.35, 0.5, 0.9, 1.3, 1.6];
  const f = (u) => 2 - u + 0.5 * u * u - 0.7 * u * u * u;
  const g = splineToGrid(t, t.map(f), 60, fs);
  for (let i = 3; i <= 48; i++) assert.ok(Math.abs(g[i] - f(i / fs)) < 1e-12, `${i}`);
  assert.equal(g[0], f(0.1));
  assert.equal(g[59], f(1.6));
});
