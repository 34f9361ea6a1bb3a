// Face detection worker: TinyFaceDetector (weights from @vladmandic/face-api, served by our server).
// Messages in:  init {modelsUrl, inputSize}, detect {rgba, width, height, id}
// Messages out: ready {backend} | error {message}, face {id, box: {x, y, w, h, score} | null, ms}
import * as faceapi from '@vladmandic/face-api';

let options = null;

function workerEnv() {
  // face-api only knows window and Node; in a worker we describe the environment ourselves.
  const Dummy = class {};
  return {
    Canvas: OffscreenCanvas,
    CanvasRenderingContext2D: self.OffscreenCanvasRenderingContext2D || Dummy,
    Image: Dummy,
    ImageData,
    Video: Dummy,
    createCanvasElement: () => new OffscreenCanvas(1, 1),
    createImageElement: () => new Dummy(),
    createVideoElement: () => new Dummy(),
    fetch: (...args) => self.fetch(...args),
    readFile: () => {
      throw new Error('readFile is not available in the browser');
    },
  };
}

async function init(modelsUrl, inputSize) {
  faceapi.env.setEnv(workerEnv());
  const tf = faceapi.tf;
  // WebGL is not registered inside a worker by face-api; its bundled WASM backend (binaries from
  // @tensorflow/tfjs-backend-wasm, served by us) is ~20x faster than the pure-JS CPU backend.
  try {
    tf.setWasmPaths(new URL('./', self.location.href).href);
    if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend unavailable');
  } catch {
    await tf.setBackend('cpu');
  }
  await tf.ready();
  await faceapi.nets.tinyFaceDetector.loadFromUri(modelsUrl);
  options = new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold: 0.4 });
  postMessage({ type: 'ready', backend: tf.getBackend() });
}

async function detect(msg) {
  const tf = faceapi.tf;
  const t0 = performance.now();
  const { width, height } = msg;
  const rgba = new Uint8Array(msg.rgba);
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  const input = tf.tensor3d(rgb, [height, width, 3], 'int32');
  let res = null;
  try {
    res = await faceapi.detectSingleFace(input, options);
  } finally {
    input.dispose();
  }
  const box = res ? { x: res.box.x, y: res.box.y, w: res.box.width, h: res.box.height, score: res.score } : null;
  postMessage({ type: 'face', id: msg.id, box, scale: msg.scale, t: msg.t, ms: performance.now() - t0 });
}

self.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.type === 'init') {
    init(msg.modelsUrl, msg.inputSize).catch((err) =>
      postMessage({ type: 'error', message: `face detector failed to load: ${err.message || err}` }),
    );
  } else if (msg.type === 'detect') {
    detect(msg).catch((err) => postMessage({ type: 'face', id: msg.id, box: null, error: String(err) }));
  }
};
