// Unit tests of the page's signal processing (node --test; no browser needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  PosTracker, Stitcher, bandpass, median, qualityLabel, resampleUniform, spectralRate, zscore,
} from '../src/dsp.js';

const fs = 30;
const wave = (n, f, fn = Math.sin) => Float64Array.from({ length: n }, (_, i) => fn((2 * Math.PI * f * i) / fs));

test('spectralRate finds a pulse rate to a fraction of a bpm', () => {
  const x = wave(20 * fs, 1.2);
  const r = spectralRate(x, fs, 0.6, 3.3, true);
  assert.ok(Math.abs(r.bpm - 72) < 0.3, `${r.bpm}`);
  assert.ok(r.snrDb > 10, `${r.snrDb}`);
  assert.equal(qualityLabel(r.snrDb), 'good');
});

test('harmonic check prefers the fundamental over a stronger second harmonic', () => {
  const x = Float64Array.from({ length: 20 * fs }, (_, i) => {
    const t = i / fs;
    return 0.6 * Math.sin(2 * Math.PI * 1.2 * t) + Math.sin(2 * Math.PI * 2.4 * t + 0.5);
  });
  assert.ok(Math.abs(spectralRate(x, fs, 0.6, 3.3, false).bpm - 144) < 0.5);
  assert.ok(Math.abs(spectralRate(x, fs, 0.6, 3.3, true).bpm - 72) < 0.5);
  // A clean fast pulse without a sub-harmonic stays where it is.
  assert.ok(Math.abs(spectralRate(wave(20 * fs, 2.4), fs, 0.6, 3.3, true).bpm - 144) < 0.5);
});

test('noise gives a poor quality label', () => {
  let seed = 1;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
  const x = Float64Array.from({ length: 20 * fs }, rnd);
  assert.notEqual(qualityLabel(spectralRate(x, fs, 0.6, 3.3).snrDb), 'good');
});

test('bandpass keeps the pulse and removes drift and breathing', () => {
  const n = 20 * fs;
  const x = Float64Array.from({ length: n }, (_, i) => {
    const t = i / fs;
    return Math.sin(2 * Math.PI * 1.2 * t) + 3 * Math.sin(2 * Math.PI * 0.2 * t) + 0.05 * i;
  });
  const y = bandpass(x, fs, 0.6, 3.3);
  const ref = wave(n, 1.2);
  let err = 0;
  for (let i = 2 * fs; i < n - 2 * fs; i++) err = Math.max(err, Math.abs(y[i] - ref[i]));
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
  const r = spectralRate(pos.signal(), fs, 0.6, 3.3, true);
  assert.ok(Math.abs(r.bpm - 78) < 1, `${r.bpm}`);
});

test('stitching overlapping windows reproduces a continuous wave', () => {
  const n = 600;
  const truth = wave(n, 1.0);
  const st = new Stitcher(n);
  for (let s = 0; s + 180 <= n; s += 90) st.add(s, truth.slice(s, s + 180).map((v) => 5 * v + 2));
  const y = st.values(0);
  assert.equal(y.length, 540);
  const z = zscore(truth.slice(0, 540));
  let err = 0;
  for (let i = 0; i < 540; i++) err = Math.max(err, Math.abs(y[i] - z[i]));
  assert.ok(err < 0.1, `${err}`);
  assert.equal(median([3, 1, 2]), 2);
});

test('resampling irregular frames onto a uniform grid keeps the rate', () => {
  // 30 fps with every 4th frame dropped and jitter: 22.5 frames/s on average.
  const t = [];
  for (let i = 0; i < 20 * fs; i++) if (i % 4 !== 3) t.push(i / fs + 0.004 * Math.sin(i));
  const x = t.map((v) => Math.sin(2 * Math.PI * 1.25 * v));
  const rate = (t.length - 1) / (t[t.length - 1] - t[0]);
  const u = resampleUniform(x, t, rate);
  assert.ok(Math.abs(u.length - t.length) <= 1);
  assert.ok(Math.abs(spectralRate(u, rate, 0.6, 3.3, true).bpm - 75) < 0.5);
});
