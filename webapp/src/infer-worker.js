// Inference worker: keeps the cropped face frames, runs the ONNX model with onnxruntime-web on sliding
// windows (or POS when no model is available), stitches the outputs and computes HR/RR.
// Breathing comes from where the Python main job takes it (settings.respiration.rr_from): with a model,
// by default the breathing modulation of a POS pulse on the central part of the model's own crops
// (mmrphys.vitals.estimators, rr_from="pulse"); the model's RSP output is kept and exported as
// rsp_model. Without a model (POS fallback): the modulation of the POS pulse itself, as the main job
// does for POS.
// Messages in:  init {model, fs}, frame {rgba, t}, reset, export
// Messages out: ready {method, backend}, update {...}, session {...}, error {message}
import * as ort from 'ort-runtime';
import {
  PosTracker, Stitcher, bandpass, median, minSamples, posPulse, presetBand, qualityLabel, rate, resampleUniform,
  respirationFromBvp, signalQuality,
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
let pulseRgb = null; // Float64Array (capacity * 3): per frame, the mean colour the breathing's pulse uses
let rrSource = 'bvp'; // 'pulse' (crop pulse, model runs), 'model' (its RSP output), 'bvp' (POS fallback)
let rspShown = null; // the last respiration waveform the breathing rate was read from (crop pulse)
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
  pulseRgb = new Float64Array(capacity * 3);
  rspShown = null;
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
    rrSource = 'bvp';
    postMessage({ type: 'ready', method, backend, note: model.reason || 'no model', rrSource,
      rrSourceLabel: settings.respiration.sources[rrSource] });
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
    const hasRsp = session.outputNames.some((n) => /rsp|resp/i.test(n)) || session.outputNames.length > 1;
    rrSource = settings.respiration.rr_from === 'model' && hasRsp ? 'model' : 'pulse';
    postMessage({
      type: 'ready', method, backend, inputs: session.inputNames, outputs: session.outputNames, rrSource,
      rrSourceLabel: settings.respiration.sources[rrSource],
    });
  } catch (err) {
    method = 'pos';
    backend = 'js';
    rrSource = 'bvp';
    postMessage({ type: 'ready', method, backend, note: `model failed to load: ${err.message || err}`, rrSource,
      rrSourceLabel: settings.respiration.sources[rrSource] });
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
  const [pr, pg, pb] = rrSource === 'pulse' ? centreMean(rgba, size) : [r / n, g / n, b / n];
  pulseRgb[3 * count] = pr;
  pulseRgb[3 * count + 1] = pg;
  pulseRgb[3 * count + 2] = pb;
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

/**
 * Mean colour of the crop's centre: the main job's pulse for the breathing rate leaves out
 * settings.respiration.pulse.crop_border of the side at each edge (the central 7/9 of a 9-px crop).
 */
function centreMean(rgba, size) {
  const m = Math.round(size * settings.respiration.pulse.crop_border);
  let r = 0;
  let g = 0;
  let b = 0;
  for (let y = m; y < size - m; y++) {
    for (let x = m; x < size - m; x++) {
      const i = 4 * (y * size + x);
      r += rgba[i];
      g += rgba[i + 1];
      b += rgba[i + 2];
    }
  }
  const k = (size - 2 * m) ** 2 || 1;
  return [r / k, g / k, b / k];
}

/**
 * Respiration from the pulse's breathing modulation over frames [from, to): their mean colours
 * resampled onto a uniform grid at fs, POS with its detrend and band-pass (the main job's pulse), then
 * mmrphys.signals.respiration_from_bvp. Null when too short or with too few clear beats.
 */
function pulseRespiration(from, to, fs) {
  const t = times.subarray(from, to);
  const channel = (c) => resampleUniform(Float64Array.from({ length: to - from }, (_, i) => pulseRgb[3 * (from + i) + c]), t, fs);
  try {
    const pulse = posPulse([channel(0), channel(1), channel(2)], fs, settings.respiration.pulse);
    return respirationFromBvp(pulse, fs, settings.preset, settings.respiration.modulation);
  } catch {
    return null; // too short, a zero channel, or too few clear beats: no breathing rate (as Python)
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
  return rateOfUniform(resampleUniform(seg, times.subarray(end - n, end), fs), fs, end, kind, recent, history);
}

/**
 * The breathing rate from the pulse's modulation (rrSource 'pulse' or 'bvp'): over the last rr_s
 * seconds of frames, as the main job's live reading does it (its crop pulse's last window, then
 * respiration_from_bvp and respiratory_rate). Its quality index is capped by the heart rate's, as the
 * main job caps the confidence: a breathing modulation is no clearer than the pulse it is read from.
 */
function breathingFromPulse(hr) {
  const end = count;
  const fs = fsOf(Math.max(0, end - 60), end);
  const n = Math.min(end, Math.round(settings.windows.rr_s * fs));
  if (n < settings.windows.rr_min_s * fs) return NO_RATE;
  const rsp = pulseRespiration(end - n, end, fs);
  rspShown = rsp;
  if (!rsp) return NO_RATE;
  return rateOfUniform(rsp, fs, end, 'rr', rrRecent, rrHistory, hr.index);
}

function rateOfUniform(uniform, fs, end, kind, recent, history, cap = NaN) {
  let bpm;
  let index;
  try {
    bpm = rate(uniform, fs, settings.preset, kind);
    index = signalQuality(uniform, fs, settings.preset, kind, settings.quality.half_width_hz[kind]);
  } catch {
    return NO_RATE; // e.g. a frame rate too low for the band (fs / 2 below its upper edge)
  }
  if (!Number.isFinite(bpm)) return NO_RATE;
  if (Number.isFinite(cap)) index = Math.min(index, cap);
  recent.push(bpm);
  if (recent.length > 5) recent.shift();
  const shown = median(recent);
  const q = qualityLabel(index, settings.quality);
  history.push({ t_s: times[end - 1], bpm: shown, raw_bpm: bpm, quality_index: index, quality: q });
  return { bpm: shown, raw_bpm: bpm, index, quality: q };
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

/** The last `s` seconds of an already filtered waveform (the respiration from the pulse), for the plot. */
function shownTail(x, s, fs) {
  if (!x) return null;
  return Float32Array.from(x.subarray(Math.max(0, x.length - Math.round(s * fs))));
}

/**
 * The whole session's respiration from the pulse (as the main job's finish: respiration_from_bvp on
 * the pulse of the whole segment) at the exported samples' times; null under rr_min_s or without
 * clear beats.
 */
function sessionPulseRespiration(start, end) {
  const fs = fsOf(0, count);
  if (count < 2 || times[count - 1] - times[0] < settings.windows.rr_min_s) return null;
  const rsp = pulseRespiration(0, count, fs);
  if (!rsp) return null;
  const out = new Array(end - start);
  for (let k = start; k < end; k++) {
    const at = (times[k] - times[0]) * fs; // the uniform grid starts at the first frame
    const i = Math.min(rsp.length - 2, Math.max(0, Math.floor(at)));
    const a = Math.min(1, Math.max(0, at - i));
    out[k - start] = rsp[i] + a * (rsp[i + 1] - rsp[i]);
  }
  return out;
}

function publish(ms, len) {
  const sig = currentSignals();
  const { start, end } = sig;
  let hr = NO_RATE;
  let rr = NO_RATE;
  if (end - start > 8) {
    hr = rateOf(sig.bvp, end, 'hr', hrRecent, hrHistory, start);
    if (rrSource !== 'model') rr = breathingFromPulse(hr);
    else if (sig.rsp) rr = rateOf(sig.rsp, end, 'rr', rrRecent, rrHistory, start);
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
    rspTail: rrSource === 'model' ? tail(sig.rsp, PLOT_SECONDS.rr, 'rr') : shownTail(rspShown, PLOT_SECONDS.rr, fs),
    rrSource,
  });
}

function exportSession() {
  const sig = currentSignals();
  const { start, end } = sig;
  const modelRsp = sig.rsp ? Array.from(sig.rsp.subarray(0, end - start)) : null;
  const t = Array.from(times.subarray(start, end));
  postMessage({
    type: 'session',
    method,
    backend,
    frames: count,
    fs: fsOf(start, end),
    timestamps_s: t,
    bvp: Array.from(sig.bvp),
    // the waveform the breathing rate is read from, and the model's RSP output beside it
    rsp: rrSource === 'model' ? modelRsp : sessionPulseRespiration(start, end),
    rsp_model: modelRsp,
    rr_source: rrSource,
    respiration_source: settings.respiration.sources[rrSource],
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
