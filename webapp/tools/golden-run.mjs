// Runs the page's DSP (src/dsp.js) on the cases Python sends on stdin (JSON) and prints the results
// (JSON) for tests/web/test_web_dsp.py, which compares them with mmrphys.signals on the same inputs.
//   {"cases": [{"op": "butter" | "bandpass" | "rate" | "quality" | "stitch" | "resample" | "detrend" | "pos"
//               | "peaks" | "respiration", ...}]}
import { readFileSync } from 'node:fs';
import {
  Stitcher, bandpass, butterBandpass, detectPeaks, detrend, posPulse, rate, resampleUniform, respirationFromBvp,
  signalQuality,
} from '../src/dsp.js';

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
  detrend: (c) => Array.from(detrend(c.x, c.lam)),
  pos: (c) => Array.from(posPulse(c.rgb, c.fs, c.settings.pulse)),
  peaks: (c) => Array.from(detectPeaks(c.x, c.fs, c.max_hz, c.settings.modulation)),
  'pos-respiration': (c) => {
    const rsp = respirationFromBvp(posPulse(c.rgb, c.fs, c.settings.pulse), c.fs, c.preset, c.settings.modulation);
    return { rsp: Array.from(rsp), rr: rate(rsp, c.fs, c.preset, 'rr') };
  },
  // the respiration waveform and its rate, as respiration_from_bvp + respiratory_rate; null if none
  respiration: (c) => {
    try {
      const rsp = respirationFromBvp(c.x, c.fs, c.preset, c.settings.modulation);
      return { rsp: Array.from(rsp), rr: rate(rsp, c.fs, c.preset, 'rr') };
    } catch (err) {
      return { error: err.message };
    }
  },
};

const input = JSON.parse(readFileSync(0, 'utf8'));
const out = input.cases.map((c) => {
  const v = ops[c.op](c);
  return typeof v === 'number' && !Number.isFinite(v) ? null : v;
});
process.stdout.write(JSON.stringify(out));
