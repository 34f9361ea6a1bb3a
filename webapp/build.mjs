// Build the web app into the Python package's static folder (src/mmrphys/web/static/).
//
//   npm ci && npm run build            WASM inference (what the repository ships)
//   WEBGPU=1 npm run build             also WebGPU where the browser has it (adds a ~27 MB wasm;
//                                      a local option, not committed)
//
// Everything the page needs comes from here: our source, the onnxruntime-web wasm runtime and the
// TinyFaceDetector weights that ship inside @vladmandic/face-api. Nothing is fetched at run time.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'src', 'mmrphys', 'web', 'static');
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

// A manifest the server reads: which files exist and what the build can do.
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
const ortVersion = JSON.parse(readFileSync(join(nm, 'onnxruntime-web', 'package.json'), 'utf8')).version;
writeFileSync(join(out, 'build.json'),
  JSON.stringify({ webgpu, wasm: wasmFile, onnxruntime_web: ortVersion, files }, null, 1) + '\n');
const total = files.reduce((s, f) => s + statSync(join(out, f)).size, 0);
console.log(`built ${files.length} files, ${(total / 1e6).toFixed(1)} MB -> ${out}`);
