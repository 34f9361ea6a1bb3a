// Build the web app into the Python package's static folder (src/mmrphys/web/static/, committed).
//
//   npm ci && npm run build            WASM inference (what the repository ships)
//   npm run build -- --out DIR         the same build into another folder (the test that checks the
//                                      committed folder is up to date builds into a temporary one)
//   WEBGPU=1 npm run build             also WebGPU where the browser has it (adds a ~27 MB wasm;
//                                      a local option, not committed)
//
// Everything the page needs comes from here: our source, the onnxruntime-web wasm runtime and the
// TinyFaceDetector weights that ship inside @vladmandic/face-api. Nothing is fetched at run time.
// Large files that compress well are stored gzipped (`NAME.gz`, deterministic: no name, no time);
// the Python server sends them with `Content-Encoding: gzip`, or inflated to a client without gzip.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const outArg = process.argv.indexOf('--out');
const out = outArg > 0 ? resolve(process.argv[outArg + 1]) : join(here, '..', 'src', 'mmrphys', 'web', 'static');
// Store a file gzipped when it is at least this big and gzip saves at least a quarter of it.
const GZIP_MIN_BYTES = 16 * 1024;
const GZIP_MIN_SAVING = 0.25;
const webgpu = process.env.WEBGPU === '1';
const nm = join(here, 'node_modules');

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'models'), { recursive: true });

const common = {
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16.4'],
  legalComments: 'none',
  logLevel: 'warning',
  define: { __WEBGPU__: webgpu ? 'true' : 'false' },
};

await build({ ...common, entryPoints: [join(here, 'src', 'main.js')], outfile: join(out, 'app.js') });
await build({ ...common, entryPoints: [join(here, 'src', 'face-worker.js')], outfile: join(out, 'face-worker.js') });
await build({
  ...common,
  entryPoints: [join(here, 'src', 'infer-worker.js')],
  outfile: join(out, 'infer-worker.js'),
  // The ort bundle that embeds its wasm glue: the page then fetches only the .wasm file itself.
  alias: { 'ort-runtime': webgpu ? 'onnxruntime-web/webgpu' : 'onnxruntime-web/wasm' },
});

copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
copyFileSync(join(here, 'src', 'app.css'), join(out, 'app.css'));
const ortDist = join(nm, 'onnxruntime-web', 'dist');
const wasmFile = webgpu ? 'ort-wasm-simd-threaded.asyncify.wasm' : 'ort-wasm-simd-threaded.wasm';
copyFileSync(join(ortDist, wasmFile), join(out, wasmFile));
// TensorFlow.js WASM backend binary (SIMD) for face-api's bundled tfjs (same version, 4.22.0); a
// browser without WASM SIMD falls back to tfjs's CPU backend.
for (const f of ['tfjs-backend-wasm-simd.wasm']) {
  copyFileSync(join(nm, '@tensorflow', 'tfjs-backend-wasm', 'dist', f), join(out, f));
}
for (const f of ['tiny_face_detector_model-weights_manifest.json', 'tiny_face_detector_model.bin']) {
  copyFileSync(join(nm, '@vladmandic', 'face-api', 'model', f), join(out, 'models', f));
}

// Third-party notices for what the bundle contains.
const notices = [
  ['onnxruntime-web', join(nm, 'onnxruntime-web')],
  ['@vladmandic/face-api (bundles TensorFlow.js, Apache-2.0)', join(nm, '@vladmandic', 'face-api')],
  ['@tensorflow/tfjs-backend-wasm', join(nm, '@tensorflow', 'tfjs-backend-wasm')],
];
let text = 'Third-party software bundled in this folder\n\n';
for (const [name, dir] of notices) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const lic = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  text += `== ${name} ${pkg.version} (${pkg.license}) ==\n`;
  text += lic ? readFileSync(join(dir, lic), 'utf8') + '\n' : `License: ${pkg.license}; author: ${pkg.author?.name ?? pkg.author ?? 'see package'}\n\n`;
}
writeFileSync(join(out, 'THIRD_PARTY_LICENSES.txt'), text);

// Which files exist (their names as the page requests them), which are stored gzipped, and what the
// build can do: a manifest for people and tests (the server lists the folder itself).
const files = [];
const walk = (d) => {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p.slice(out.length + 1).replaceAll('\\', '/'));
  }
};
walk(out);
files.sort();
const gzipped = [];
let raw = 0;
for (const f of files) {
  const p = join(out, f);
  const data = readFileSync(p);
  raw += data.length;
  if (data.length < GZIP_MIN_BYTES) continue;
  const gz = gzipSync(data, { level: constants.Z_BEST_COMPRESSION });
  gz[9] = 255; // the header's "operating system" byte: unknown, so the bytes do not depend on the OS
  if (gz.length > (1 - GZIP_MIN_SAVING) * data.length) continue;
  writeFileSync(`${p}.gz`, gz);
  rmSync(p);
  gzipped.push(f);
}
const ortVersion = JSON.parse(readFileSync(join(nm, 'onnxruntime-web', 'package.json'), 'utf8')).version;
writeFileSync(join(out, 'build.json'),
  JSON.stringify({ webgpu, wasm: wasmFile, onnxruntime_web: ortVersion, files, gzipped }, null, 1) + '\n');
let stored = 0;
const addSizes = (d) => {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) addSizes(p);
    else stored += statSync(p).size;
  }
};
addSizes(out);
console.log(`built ${files.length} files, ${(raw / 1e6).toFixed(1)} MB (${(stored / 1e6).toFixed(1)} MB stored, `
  + `${gzipped.length} gzipped) -> ${out}`);
