// Inference worker: keeps the cropped face frames, runs the ONNX model with onnxruntime-web on sliding
// windows (or POS when no model is available), stitches the outputs and computes HR/RR.
// Messages in:  init {model, fs}, frame {rgba, t}, reset, export
// Messages out: ready {method, backend}, update {...}, session {...}, error {message}
import * as ort from 'ort-runtime';
import {
  PosTracker, Stitcher, bandpass, median, minSamples, presetBand, qualityLabel, rate, resampleUniform, signalQuality,
} from './dsp.js';

const MAX_SECONDS = 30 * 60; // a session keeps at most 30 min (then it stops growing)
const PLOT_SECONDS = { hr: 10, rr: 20 }; // shown in the plots (display only)

// /api/model.json: {available, url, frames, first_frames, stride, size, name, label, settings}, where
// settings holds the Python package's preset (bands, filter order, PSD rule), rate windows and
// quality windows: the page has no copies of them.
let cfg = null;
let settings = null;
let session = null;
let backend = 'none';
let method = 'pos';
let capacity = 0;
let frames = []; // Uint8Array RGB (size*size*3) of the most recent frames, aligned with frameIndex
let firstKept = 0; // absolute index of frames[0]
let times = null; // Float64Array, seconds of each frame since start
let count = 0; // frames received
let lastWindowEnd = 0; // absolute index one past the last frame of the last window
let busy = false;
let bvp = null;
let rsp = null;
let pos = null;
let inferMs = [];
let windows = 0;
const hrHistory = [];
const rrHistory = [];
const hrRecent = [];
const rrRecent = [];

function reset() {
  capacity = Math.round(MAX_SECONDS * 60); // up to 60 fps
  frames = [];
  firstKept = 0;
  times = new Float64Array(capacity);
  count = 0;
  lastWindowEnd = 0;
  busy = false;
  bvp = new Stitcher(capacity);
  rsp = new Stitcher(capacity);
  pos = new PosTracker(30, capacity);
  inferMs = [];
  windows = 0;
  hrHistory.length = 0;
  rrHistory.length = 0;
  hrRecent.length = 0;
  rrRecent.length = 0;
}

async function init(model) {
  cfg = model;
  settings = model.settings;
  reset();
  if (!model.available) {
    method = 'pos';
    backend = 'js';
    postMessage({ type: 'ready', method, backend, note: model.reason || 'no model' });
    return;
  }
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation and buy little on small CPUs
  ort.env.wasm.proxy = false; // we are already off the main thread
  // Only the .wasm binary is fetched (its JS glue is inside our bundle), from our own server.
  // eslint-disable-next-line no-undef
  const wasmName = __WEBGPU__ ? 'ort-wasm-simd-threaded.asyncify.wasm' : 'ort-wasm-simd-threaded.wasm';
  ort.env.wasm.wasmPaths = { wasm: new URL(`./${wasmName}`, self.location.href).href };
  const providers = [];
  // eslint-disable-next-line no-undef
  if (__WEBGPU__ && self.navigator.gpu) {
    try {
      if (await self.navigator.gpu.requestAdapter()) providers.push('webgpu');
    } catch {
      /* no adapter: WASM */
    }
  }
  providers.push('wasm');
  try {
    session = await ort.InferenceSession.create(model.url, {
      executionProviders: providers,
      graphOptimizationLevel: 'all',
    });
    backend = providers[0];
    method = 'model';
    postMessage({ type: 'ready', method, backend, inputs: session.inputNames, outputs: session.outputNames });
  } catch (err) {
    method = 'pos';
    backend = 'js';
    postMessage({ type: 'ready', method, backend, note: `model failed to load: ${err.message || err}` });
  }
}

function frameAt(index) {
  return frames[index - firstKept];
}

function onFrame(rgba, t) {
  if (count >= capacity) return;
  const size = cfg.size;
  const n = size * size;
  const rgb = new Uint8Array(n * 3);
  let r = 0;
  let g = 0;
  let b = 0;
  for (let i = 0; i < n; i++) {
    rgb[3 * i] = rgba[4 * i];
    rgb[3 * i + 1] = rgba[4 * i + 1];
    rgb[3 * i + 2] = rgba[4 * i + 2];
    r += rgba[4 * i];
    g += rgba[4 * i + 1];
    b += rgba[4 * i + 2];
  }
  times[count] = t;
  frames.push(rgb);
  count++;
  pos.push(r / n, g / n, b / n);
  // Keep only what the next windows can need.
  const keep = (cfg.frames || 181) + 240;
  if (frames.length > keep) {
    const drop = frames.length - keep;
    frames.splice(0, drop);
    firstKept += drop;
  }
  if (method === 'pos') {
    if (count % 15 === 0) publish();
  } else {
    schedule();
  }
}

function nextWindowLength() {
  const full = cfg.frames;
  // A model with a dynamic frame axis gives a first estimate sooner on a shorter first window.
  if (windows === 0 && cfg.first_frames && cfg.first_frames < full) return count >= cfg.first_frames ? cfg.first_frames : 0;
  return count >= full ? full : 0;
}

function schedule() {
  if (busy || !session) return;
  const len = nextWindowLength();
  if (!len) return;
  if (windows > 0 && count - lastWindowEnd < cfg.stride) return;
  busy = true;
  runWindow(count - len, len)
    .catch((err) => postMessage({ type: 'error', message: `inference failed: ${err.message || err}` }))
    .finally(() => {
      busy = false;
      schedule();
    });
}

async function runWindow(start, len) {
  const size = cfg.size;
  const plane = size * size;
  const data = new Float32Array(3 * len * plane);
  // Layout (1, 3, T+1, H, W), pixels scaled to [0, 1].
  for (let f = 0; f < len; f++) {
    const rgb = frameAt(start + f);
    for (let i = 0; i < plane; i++) {
      data[f * plane + i] = rgb[3 * i] / 255;
      data[(len + f) * plane + i] = rgb[3 * i + 1] / 255;
      data[(2 * len + f) * plane + i] = rgb[3 * i + 2] / 255;
    }
  }
  const input = new ort.Tensor('float32', data, [1, 3, len, size, size]);
  const t0 = performance.now();
  const out = await session.run({ [session.inputNames[0]]: input });
  const ms = performance.now() - t0;
  inferMs.push(ms);
  windows++;
  lastWindowEnd = start + len;
  const names = session.outputNames;
  const pick = (re, fallbackIdx) => {
    const name = names.find((n) => re.test(n)) ?? names[fallbackIdx];
    return name !== undefined ? out[name] : undefined;
  };
  const yb = pick(/bvp|ppg/i, 0);
  const yr = pick(/rsp|resp/i, 1);
  // Output sample i is the difference of frames start+i and start+i+1: it belongs to frame start+i+1.
  if (yb) bvp.add(start + 1, yb.data);
  if (yr && yr !== yb) rsp.add(start + 1, yr.data);
  publish(ms, len);
}

function fsOf(from, to) {
  if (to - from < 2) return cfg.fs || 30;
  return (to - 1 - from) / (times[to - 1] - times[from]);
}

const NO_RATE = { bpm: NaN, index: NaN, quality: 'none' };

/**
 * The rate over the last window of `kind` ('hr' | 'rr'), as mmrphys.signals.heart_rate /
 * respiratory_rate and signal_quality compute it on that window (resampled onto a uniform grid first:
 * frames arrive with jitter). The displayed value is the median of the last 5 (display smoothing).
 */
function rateOf(signal, end, kind, recent, history, sampleOffset) {
  // signal covers samples [sampleOffset, end)
  const fs = fsOf(Math.max(sampleOffset, end - 60), end);
  const n = Math.min(end - sampleOffset, Math.round(settings.windows[`${kind}_s`] * fs));
  if (n < settings.windows[`${kind}_min_s`] * fs) return NO_RATE;
  const seg = signal.subarray(signal.length - n);
  const uniform = resampleUniform(seg, times.subarray(end - n, end), fs);
  let bpm;
  let index;
  try {
    bpm = rate(uniform, fs, settings.preset, kind);
    index = signalQuality(uniform, fs, settings.preset, kind, settings.quality.half_width_hz[kind]);
  } catch {
    return NO_RATE; // e.g. a frame rate too low for the band (fs / 2 below its upper edge)
  }
  if (!Number.isFinite(bpm)) return NO_RATE;
  recent.push(bpm);
  if (recent.length > 5) recent.shift();
  const shown = median(recent);
  const q = qualityLabel(index, settings.quality);
  history.push({ t_s: times[end - 1], bpm: shown, raw_bpm: bpm, quality_index: index, quality: q });
  return { bpm: shown, index, quality: q };
}

function currentSignals() {
  if (method === 'pos') {
    const h = pos.signal();
    return { start: 0, end: h.length, bvp: Float32Array.from(h), rsp: null };
  }
  const start = 1;
  const end = bvp.end;
  return { start, end, bvp: bvp.values(start), rsp: rsp.end > 0 ? rsp.values(start) : null };
}

function publish(ms, len) {
  const sig = currentSignals();
  const { start, end } = sig;
  let hr = NO_RATE;
  let rr = NO_RATE;
  if (end - start > 8) {
    hr = rateOf(sig.bvp, end, 'hr', hrRecent, hrHistory, start);
    if (sig.rsp) rr = rateOf(sig.rsp, end, 'rr', rrRecent, rrHistory, start);
  }
  // Display: the last 10 s of BVP and 20 s of respiration, with the preset's band-pass.
  const fs = fsOf(Math.max(start, end - 60), end);
  const tail = (x, s, kind) => {
    if (!x) return null;
    const n = Math.min(x.length, Math.round(s * fs));
    const ctx = Math.min(x.length, n + Math.round(4 * fs)); // filter with context, show the tail
    if (ctx < minSamples(settings.preset)) return Float32Array.from(x.subarray(x.length - n));
    try {
      const [lo, hi] = presetBand(settings.preset, kind);
      return Float32Array.from(bandpass(x.subarray(x.length - ctx), fs, lo, hi, settings.preset.order).slice(ctx - n));
    } catch {
      return Float32Array.from(x.subarray(x.length - n));
    }
  };
  postMessage({
    type: 'update',
    method,
    backend,
    frames: count,
    samples: end - start,
    windows,
    inferMs: ms ?? null,
    inferFrames: len ?? null,
    fs,
    hr,
    rr,
    bvpTail: tail(sig.bvp, PLOT_SECONDS.hr, 'hr'),
    rspTail: tail(sig.rsp, PLOT_SECONDS.rr, 'rr'),
  });
}

function exportSession() {
  const sig = currentSignals();
  const { start, end } = sig;
  const t = Array.from(times.subarray(start, end));
  postMessage({
    type: 'session',
    method,
    backend,
    frames: count,
    fs: fsOf(start, end),
    timestamps_s: t,
    bvp: Array.from(sig.bvp),
    rsp: sig.rsp ? Array.from(sig.rsp.subarray(0, end - start)) : null,
    heart_rate_history: hrHistory.slice(),
    respiratory_rate_history: rrHistory.slice(),
    infer_ms: inferMs.slice(),
    windows,
  });
}

self.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.type === 'init') init(msg.model);
  else if (msg.type === 'frame') onFrame(new Uint8Array(msg.rgba), msg.t);
  else if (msg.type === 'reset') reset();
  else if (msg.type === 'export') exportSession();
};
