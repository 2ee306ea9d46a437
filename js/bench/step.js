// Per-step time of rnnedge's JavaScript runtime: onnxruntime-node (and its bare session), onnxruntime-web
// in Node, and onnxruntime-web in headless Chromium with 1 thread and, cross-origin isolated, 2 threads.
// Also what a page downloads and the time from navigation to the first prediction.
//   node bench/step.js MODEL.onnx ... [--steps 400] [--no-browser] [--json]
// benchmarks/js_step.py runs this beside the Python runtime and prints the ratios.
import { readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as ortNode from 'onnxruntime-node';
import { load } from '../src/node.js';
import { launch } from '../test/browser.js';
import { serve } from '../test/static-server.js';
import { timeBare, timeSteps } from './workload.js';

const JS = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const steps = option('--steps', 400);
const models = args.filter((a, i) => a.endsWith('.onnx') && args[i - 1] !== '--steps');
if (!models.length) {
  console.error('usage: node bench/step.js MODEL.onnx ... [--steps 400] [--no-browser] [--json]');
  process.exit(2);
}

function sizes(files) {
  let raw = 0;
  let gzip = 0;
  for (const f of files) {
    const bytes = readFileSync(f);
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  return { bytes: raw, gzip_bytes: gzip };
}

const ortDist = join(JS, 'node_modules', 'onnxruntime-web', 'dist');
const report = {
  steps,
  download: {
    onnxruntime_web: sizes(['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'].map((f) => join(ortDist, f))),
    rnnedge_js: sizes(readdirSync(join(JS, 'src')).filter((f) => f.endsWith('.js')).map((f) => join(JS, 'src', f))),
    models: Object.fromEntries(models.map((m) => [basename(m), sizes([m])])),
  },
  models: {},
};

for (const path of models) {
  const row = {};
  const model = await load(path, { backend: 'node' });
  row.node = await timeSteps(model, { steps });
  const session = await ortNode.InferenceSession.create(readFileSync(path), {
    executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  row.node_bare = await timeBare(ortNode, session, model, { steps });
  await session.release();
  await model.dispose();
  const wasm = await load(path, { backend: 'wasm' });
  row.wasm_node = await timeSteps(wasm, { steps });
  await wasm.dispose();
  report.models[basename(path)] = row;
}

if (!flag('--no-browser')) {
  const files = Object.fromEntries(models.map((m, i) => [`/bench-models/${i}.onnx`, m]));
  const [browser, plain, isolated] = await Promise.all([launch(), serve({ files }), serve({ files, isolated: true })]);
  try {
    for (const [i, path] of models.entries()) {
      for (const [key, server, threads] of [['chromium_1', plain, 1], ['chromium_2', isolated, 2]]) {
        const page = await browser.context.newPage();
        await page.goto(`${server.url}/bench/step.html?model=/bench-models/${i}.onnx&threads=${threads}&steps=${steps}`);
        const result = await page.evaluate(() => window.benchResult);
        if (result.error) throw new Error(`${basename(path)} in Chromium (${threads} threads): ${result.error}`);
        report.models[basename(path)][key] = result;
        await page.close();
      }
    }
  } finally {
    await browser.close();
    await plain.close();
    await isolated.close();
  }
}

if (flag('--json')) console.log(JSON.stringify(report, null, 1));
else {
  const us = (r) => (r ? `${r.median_us.toFixed(0)} µs` : '–');
  for (const [name, r] of Object.entries(report.models)) {
    console.log(`${name}: node ${us(r.node)} (bare ${us(r.node_bare)}), wasm in node ${us(r.wasm_node)}, chromium 1 thread ${us(r.chromium_1)}, 2 threads ${us(r.chromium_2)}`);
  }
  console.log('download', JSON.stringify(report.download));
}
