// Page logic: capture (camera or file), face tracking, the training crop, hand-off to the workers,
// readouts, plots, warnings and export. No network access other than our own server's files.
import { drawTrace } from './plot.js';

const $ = (id) => document.getElementById(id);
const DETECT_EVERY = 10; // frames between face detections (a third of a second at 30 fps)
const DETECT_WIDTH = 320; // detection runs on a downscaled frame
// The training crop's scale (square box enlarged about its centre) and the longest face gap come
// from the server (/api/model.json settings: mmrphys.faces and mmrphys.vitals); no copies here.
const cropScale = () => app.model.settings.crop_scale;
const noFaceS = () => app.model.settings.windows.no_face_s;
const DARK_LUMA = 40;
const MOVE_FRACTION = 0.12; // centre shift per detection, relative to the face size

const app = {
  model: null,
  method: 'loading',
  backend: '',
  rrRaw: [], // the raw breathing rates of the updates (status(), for tests)
  rrSource: null, // where the breathing rate comes from: 'pulse' | 'model' | 'bvp' (see infer-worker.js)
  rrSourceLabel: '',
  running: false,
  source: 'camera',
  sourceLabel: '',
  stream: null,
  file: null,
  t0: 0,
  startedAt: null,
  endedAt: null,
  frames: 0,
  frameTimes: [],
  lastT: -1,
  faceBusy: false,
  faceReady: false,
  faceBackend: '',
  faceMs: [],
  detections: [], // last raw boxes {cx, cy, s}
  target: null, // median of recent detections
  smooth: null, // per-frame smoothed box
  lastFaceT: -Infinity,
  everFace: false,
  moveTs: [],
  dark: 0,
  warnings: [],
  warningNow: '',
  last: null, // last update from the inference worker
  plotUpdates: 0,
  inferMs: [],
  inferFrames: [],
  presented0: null,
  presented: 0,
  pendingExport: null,
};

const inferWorker = new Worker('/static/infer-worker.js', { type: 'module' });
const faceWorker = new Worker('/static/face-worker.js', { type: 'module' });
const cropCanvas = $('crop');
const cropCtx = cropCanvas.getContext('2d', { willReadFrequently: true });
const detectCanvas = document.createElement('canvas');
const detectCtx = detectCanvas.getContext('2d', { willReadFrequently: true });
const video = $('video');
const overlay = $('overlay');

function setMethodLabel() {
  const el = $('method');
  if (app.method === 'model') {
    el.textContent = `Method: ${app.model.label} (onnxruntime-web, ${app.backend})`;
    el.className = 'method';
  } else if (app.method === 'pos') {
    el.textContent = `Method: POS fallback (classic rPPG, no model: ${app.model?.reason || 'model missing'}); breathing from the pulse's modulation`;
    el.className = 'method fallback';
  } else {
    el.textContent = app.method;
  }
}

async function boot() {
  const res = await fetch('/api/model.json', { cache: 'no-store' });
  app.model = await res.json();
  inferWorker.postMessage({ type: 'init', model: app.model });
  faceWorker.postMessage({ type: 'init', modelsUrl: '/static/models', inputSize: 160 });
  setMethodLabel();
  await listCameras();
}

async function listCameras() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  const sel = $('source');
  const current = sel.value;
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  sel.innerHTML = '';
  devices.forEach((d, i) => sel.add(new Option(d.label || `Camera ${i + 1}`, `camera:${d.deviceId}`)));
  if (!devices.length) sel.add(new Option('Default camera', 'camera:'));
  sel.add(new Option('Video file…', 'file'));
  if ([...sel.options].some((o) => o.value === current)) sel.value = current;
}

inferWorker.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.type === 'ready') {
    app.method = msg.method;
    app.backend = msg.backend;
    app.rrSource = msg.rrSource;
    app.rrSourceLabel = msg.rrSourceLabel;
    $('rr-src').textContent = msg.rrSourceLabel ? `from the ${msg.rrSourceLabel}` : '';
    if (msg.note && app.model) app.model.reason = app.model.reason || msg.note;
    setMethodLabel();
  } else if (msg.type === 'update') {
    app.last = msg;
    if (msg.inferMs != null) {
      app.inferMs.push(msg.inferMs);
      app.inferFrames.push(msg.inferFrames);
    }
    if (Number.isFinite(msg.rr.raw_bpm)) app.rrRaw.push(msg.rr.raw_bpm);
    showVitals(msg);
  } else if (msg.type === 'session') {
    finishExport(msg);
  } else if (msg.type === 'error') {
    warn(msg.message);
  }
};

faceWorker.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.type === 'ready') {
    app.faceReady = true;
    app.faceBackend = msg.backend;
  } else if (msg.type === 'face') {
    app.faceBusy = false;
    if (msg.ms) app.faceMs.push(msg.ms);
    if (msg.box && app.running) onFace(msg.box, msg.scale, msg.t);
  } else if (msg.type === 'error') {
    warn(msg.message);
  }
};

function onFace(box, scale, t) {
  const s = Math.max(box.w, box.h) * scale;
  const det = { cx: (box.x + box.w / 2) * scale, cy: (box.y + box.h / 2) * scale, s };
  const prev = app.detections[app.detections.length - 1];
  if (prev && Math.hypot(det.cx - prev.cx, det.cy - prev.cy) > MOVE_FRACTION * s) app.moveTs.push(t);
  app.detections.push(det);
  if (app.detections.length > 5) app.detections.shift();
  const med = (k) => {
    const v = app.detections.map((d) => d[k]).sort((a, b) => a - b);
    return v[v.length >> 1];
  };
  app.target = { cx: med('cx'), cy: med('cy'), s: med('s') };
  if (!app.smooth) app.smooth = { ...app.target };
  app.lastFaceT = t;
  app.everFace = true;
}

/** The crop rectangle in video pixels: square, x crop scale, clipped to the frame (centre crop without a face). */
function cropRect(W, H) {
  let b = app.smooth;
  if (!b) b = { cx: W / 2, cy: H / 2, s: (0.6 * Math.min(W, H)) / cropScale() };
  const side = b.s * cropScale();
  const x0 = Math.max(0, Math.round(b.cx - side / 2));
  const y0 = Math.max(0, Math.round(b.cy - side / 2));
  const x1 = Math.min(W, Math.round(b.cx + side / 2));
  const y1 = Math.min(H, Math.round(b.cy + side / 2));
  return [x0, y0, Math.max(1, x1 - x0), Math.max(1, y1 - y0)];
}

function onVideoFrame(now, meta) {
  if (!app.running) return;
  const t = app.source === 'file' ? meta.mediaTime : (meta.captureTime ?? now) / 1000;
  if (app.t0 === null) app.t0 = t;
  const ts = t - app.t0;
  // Frames the video element presented since Start: with frames processed, tells how many were dropped.
  if (app.presented0 === null) app.presented0 = meta.presentedFrames - 1;
  app.presented = meta.presentedFrames - app.presented0;
  if (ts > app.lastT) {
    app.lastT = ts;
    processFrame(ts);
    if (app.source === 'file') pacePlayback();
  }
  video.requestVideoFrameCallback(onVideoFrame);
}

/**
 * A file can be played slower than real time: when the page misses frames (the video element presents
 * more than it processes), slow playback down so every frame is used; timestamps come from the file.
 */
function pacePlayback() {
  if (app.frames % 30 !== 0) return;
  const missed = app.presented - app.frames - (app.missedAtCheck ?? 0);
  app.missedAtCheck = app.presented - app.frames;
  if (missed > 1 && video.playbackRate > 0.25) video.playbackRate = Math.max(0.25, video.playbackRate * 0.7);
}

function processFrame(t) {
  const W = video.videoWidth;
  const H = video.videoHeight;
  if (!W || !H) return;
  // Face detection on a downscaled copy, every few frames, when the detector is free.
  if (app.faceReady && !app.faceBusy && app.frames % DETECT_EVERY === 0) {
    const dw = Math.min(DETECT_WIDTH, W);
    const dh = Math.round((H * dw) / W);
    if (detectCanvas.width !== dw || detectCanvas.height !== dh) {
      detectCanvas.width = dw;
      detectCanvas.height = dh;
    }
    detectCtx.drawImage(video, 0, 0, dw, dh);
    const img = detectCtx.getImageData(0, 0, dw, dh);
    app.faceBusy = true;
    faceWorker.postMessage(
      { type: 'detect', rgba: img.data.buffer, width: dw, height: dh, id: app.frames, scale: W / dw, t },
      [img.data.buffer],
    );
  }
  // Box smoothing: follow the median of recent detections gradually (no jumps in the crop).
  if (app.target && app.smooth) {
    for (const k of ['cx', 'cy', 's']) app.smooth[k] += 0.25 * (app.target[k] - app.smooth[k]);
  }
  const [x, y, w, h] = cropRect(W, H);
  const size = app.model.size;
  if (cropCanvas.width !== size) {
    cropCanvas.width = size;
    cropCanvas.height = size;
  }
  cropCtx.imageSmoothingEnabled = true;
  cropCtx.imageSmoothingQuality = 'high';
  cropCtx.drawImage(video, x, y, w, h, 0, 0, size, size);
  const crop = cropCtx.getImageData(0, 0, size, size);
  let luma = 0;
  const d = crop.data;
  for (let i = 0; i < d.length; i += 4) luma += 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
  luma /= d.length / 4;
  app.dark = luma < DARK_LUMA ? app.dark + 1 : 0;
  inferWorker.postMessage({ type: 'frame', rgba: d.buffer, t }, [d.buffer]);
  app.frames++;
  app.frameTimes.push(performance.now());
  if (app.frameTimes.length > 90) app.frameTimes.shift();
  drawOverlay(W, H, [x, y, w, h]);
  updateWarnings(t);
}

function drawOverlay(W, H, rect) {
  if (overlay.width !== W || overlay.height !== H) {
    overlay.width = W;
    overlay.height = H;
  }
  const ctx = overlay.getContext('2d');
  ctx.clearRect(0, 0, W, H);
  ctx.strokeStyle = app.lastT - app.lastFaceT < noFaceS() ? '#3ddc84' : '#f0a030';
  ctx.lineWidth = Math.max(2, W / 240);
  ctx.strokeRect(...rect);
}

function updateWarnings(t) {
  let msg = '';
  if (app.lastT - app.lastFaceT > noFaceS() && app.lastT > 2) {
    msg = app.everFace ? 'Face lost: look at the camera' : 'No face found: face the camera, about an arm’s length away';
  } else if (app.dark > 30) {
    msg = 'Too dark: add light in front of you';
  } else if (app.moveTs.some((m) => t - m < 3)) {
    msg = 'Moving too much: keep your head still';
  }
  if (msg !== app.warningNow) {
    app.warningNow = msg;
    if (msg) app.warnings.push({ t_s: Number(t.toFixed(2)), message: msg });
    const el = $('warning');
    el.textContent = msg;
    el.hidden = !msg;
  }
}

function warn(message) {
  app.warnings.push({ t_s: Math.max(0, app.lastT), message });
  const el = $('warning');
  el.textContent = message;
  el.hidden = false;
}

function fmtRate(r) {
  return Number.isFinite(r.bpm) ? Math.round(r.bpm).toString() : '--';
}

function showVitals(msg) {
  $('hr').textContent = fmtRate(msg.hr);
  $('rr').textContent = fmtRate(msg.rr);
  const q = (el, r) => {
    el.className = `quality q-${r.quality}`;
    el.textContent = r.quality === 'none' ? 'collecting…' : `${r.quality} signal (quality ${r.index.toFixed(2)})`;
  };
  q($('hr-q'), msg.hr);
  q($('rr-q'), msg.rr);
  if (msg.inferMs != null) $('infer').textContent = msg.inferMs.toFixed(0);
  drawTrace($('plot-bvp'), msg.bvpTail, '#c0392b', 'waiting for the first window…');
  drawTrace($('plot-rsp'), msg.rspTail, '#2266aa', 'waiting…');
  app.plotUpdates++;
}

function processingFps() {
  const f = app.frameTimes;
  if (f.length < 2) return 0;
  return ((f.length - 1) * 1000) / (f[f.length - 1] - f[0]);
}

function tick() {
  if (app.running) {
    const s = Math.max(0, Math.floor(app.lastT));
    $('elapsed').textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    $('frames').textContent = String(app.frames);
    $('fps').textContent = processingFps().toFixed(1);
  }
}
setInterval(tick, 250);

async function start() {
  const sel = $('source').value;
  inferWorker.postMessage({ type: 'reset' });
  Object.assign(app, {
    frames: 0, frameTimes: [], lastT: -1, t0: null, detections: [], target: null, smooth: null,
    lastFaceT: -Infinity, everFace: false, moveTs: [], dark: 0, warnings: [], warningNow: '', last: null,
    plotUpdates: 0, inferMs: [], inferFrames: [], faceMs: [], presented0: null, presented: 0, rrRaw: [],
    startedAt: new Date(), endedAt: null,
  });
  try {
    if (sel === 'file') {
      if (!app.file) {
        $('file').click();
        return;
      }
      app.source = 'file';
      app.sourceLabel = app.file.name;
      video.srcObject = null;
      video.src = URL.createObjectURL(app.file);
      video.loop = false;
      video.playbackRate = 1;
      app.missedAtCheck = 0;
    } else {
      app.source = 'camera';
      const deviceId = sel.slice('camera:'.length);
      const constraints = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } };
      if (deviceId) constraints.deviceId = { exact: deviceId };
      app.stream = await navigator.mediaDevices.getUserMedia({ video: constraints, audio: false });
      app.sourceLabel = app.stream.getVideoTracks()[0]?.label || 'camera';
      video.src = '';
      video.srcObject = app.stream;
      listCameras().then(() => ($('source').value = `camera:${app.stream.getVideoTracks()[0]?.getSettings().deviceId}`));
    }
    app.running = true;
    await video.play();
    video.requestVideoFrameCallback(onVideoFrame);
    $('start').disabled = true;
    $('stop').disabled = false;
    $('export-json').disabled = true;
    $('export-csv').disabled = true;
  } catch (err) {
    app.running = false;
    warn(`Could not start: ${err.message || err}`);
  }
}

function stop() {
  app.running = false;
  app.endedAt = new Date();
  video.pause();
  if (app.stream) app.stream.getTracks().forEach((tr) => tr.stop());
  app.stream = null;
  $('start').disabled = false;
  $('stop').disabled = true;
  $('export-json').disabled = false;
  $('export-csv').disabled = false;
}

function requestExport(kind) {
  app.pendingExport = kind;
  inferWorker.postMessage({ type: 'export' });
}

function stamp(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

function sessionJson(s) {
  const last = (h) => (h.length ? h[h.length - 1].bpm : null);
  const clean = (v) => (Number.isFinite(v) ? v : null);
  return {
    format: 'mmrphys-web-session',
    version: 1,
    metadata: {
      start_time: app.startedAt?.toISOString() ?? null,
      end_time: (app.endedAt ?? new Date()).toISOString(),
      duration_s: s.timestamps_s.length ? s.timestamps_s[s.timestamps_s.length - 1] : 0,
      sampling_rate_hz: s.fs,
      frames: s.frames,
      samples: s.bvp.length,
      method: s.method === 'model' ? app.model.name : 'pos',
      model: s.method === 'model' ? app.model.label : null,
      backend: s.backend,
      source: app.source,
      source_label: app.sourceLabel,
      windows: s.windows,
      respiration_source: s.respiration_source,
    },
    timestamps_s: s.timestamps_s,
    bvp: s.bvp,
    rsp: s.rsp,
    rsp_model: s.rsp_model,
    rates: {
      heart_rate_bpm: clean(last(s.heart_rate_history)),
      respiratory_rate_bpm: clean(last(s.respiratory_rate_history)),
      respiratory_rate_source: s.rr_source,
      heart: s.heart_rate_history.map((r) => ({ ...r, bpm: clean(r.bpm), raw_bpm: clean(r.raw_bpm), quality_index: clean(r.quality_index) })),
      respiratory: s.respiratory_rate_history.map((r) => ({ ...r, bpm: clean(r.bpm), raw_bpm: clean(r.raw_bpm), quality_index: clean(r.quality_index) })),
    },
    warnings: app.warnings,
    inference_ms: s.infer_ms,
  };
}

function sessionCsv(s) {
  // One row per sample; the rate columns carry the displayed rate at that time (blank before the first).
  const rateAt = (hist) => {
    let j = -1;
    return (t) => {
      while (j + 1 < hist.length && hist[j + 1].t_s <= t) j++;
      return j >= 0 && Number.isFinite(hist[j].bpm) ? hist[j].bpm.toFixed(2) : '';
    };
  };
  const hr = rateAt(s.heart_rate_history);
  const rr = rateAt(s.respiratory_rate_history);
  const rows = ['t_s,bvp,rsp,hr_bpm,rr_bpm'];
  for (let i = 0; i < s.timestamps_s.length; i++) {
    const t = s.timestamps_s[i];
    const r = s.rsp ? s.rsp[i].toFixed(6) : '';
    rows.push(`${t.toFixed(4)},${s.bvp[i].toFixed(6)},${r},${hr(t)},${rr(t)}`);
  }
  return rows.join('\n') + '\n';
}

function finishExport(s) {
  const kind = app.pendingExport;
  app.pendingExport = null;
  if (!kind) return;
  const name = `mmrphys-session-${stamp(app.startedAt ?? new Date())}.${kind}`;
  const blob =
    kind === 'json'
      ? new Blob([JSON.stringify(sessionJson(s))], { type: 'application/json' })
      : new Blob([sessionCsv(s)], { type: 'text/csv' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

$('start').addEventListener('click', start);
$('stop').addEventListener('click', stop);
$('export-json').addEventListener('click', () => requestExport('json'));
$('export-csv').addEventListener('click', () => requestExport('csv'));
$('source').addEventListener('change', () => {
  if ($('source').value === 'file') $('file').click();
});
$('file').addEventListener('change', () => {
  app.file = $('file').files[0] || null;
});
video.addEventListener('ended', () => app.running && stop());

// Read-only status for tests and benchmarks (and curious users in the console).
window.__mmrphys = {
  status: () => ({
    running: app.running,
    method: app.method,
    backend: app.backend,
    model: app.model,
    faceReady: app.faceReady,
    faceBackend: app.faceBackend,
    faceMsMean: app.faceMs.length ? app.faceMs.reduce((a, b) => a + b, 0) / app.faceMs.length : null,
    frames: app.frames,
    elapsed_s: app.lastT,
    processingFps: processingFps(),
    hr: app.last ? app.last.hr : null,
    rr: app.last ? app.last.rr : null,
    rrRaw: app.rrRaw.slice(),
    rrSource: app.rrSource,
    rrSourceLabel: app.rrSourceLabel,
    samples: app.last ? app.last.samples : 0,
    windows: app.last ? app.last.windows : 0,
    fs: app.last ? app.last.fs : null,
    plotUpdates: app.plotUpdates,
    inferMs: app.inferMs.slice(),
    inferFrames: app.inferFrames.slice(),
    presentedFrames: app.presented,
    playbackRate: video.playbackRate,
    warning: app.warningNow,
    warnings: app.warnings.slice(),
    everFace: app.everFace,
    box: app.smooth,
  }),
};

boot().catch((err) => warn(`Start-up failed: ${err.message || err}`));
