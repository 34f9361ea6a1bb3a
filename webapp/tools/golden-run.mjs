// Runs the page's DSP (src/dsp.js) on the cases Python sends on stdin (JSON) and prints the results
// (JSON) for tests/web/test_web_dsp.py, which compares them with mmrphys.signals on the same inputs.
//   {"cases": [{"op": "butter" | "bandpass" | "rate" | "quality" | "stitch" | "resample", ...}]}
import { readFileSync } from 'node:fs';
import { Stitcher, bandpass, butterBandpass, rate, resampleUniform, signalQuality } from '../src/dsp.js';

const ops = {
  butter: (c) => {
    const { b, a } = butterBandpass(c.order, c.band[0], c.band[1], c.fs);
    return { b: Array.from(b), a: Array.from(a) };
  },
  bandpass: (c) => Array.from(bandpass(c.x, c.fs, c.band[0], c.band[1], c.order)),
  rate: (c) => rate(c.x, c.fs, c.preset, c.kind),
  quality: (c) => signalQuality(c.x, c.fs, c.preset, c.kind, c.half_width_hz),
  stitch: (c) => {
    const st = new Stitcher(c.n);
    for (const [start, values] of c.windows) st.add(start, values);
    return Array.from(st.values(0));
  },
  resample: (c) => Array.from(resampleUniform(c.x, c.t, c.fs)),
};

const input = JSON.parse(readFileSync(0, 'utf8'));
const out = input.cases.map((c) => {
  const v = ops[c.op](c);
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
});
process.stdout.write(JSON.stringify(out));
