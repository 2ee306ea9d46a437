// The README's JavaScript example runs as written (section "In the browser and in Node"), in a folder
// holding the files it names (the fixtures' tiny models under the README's names) and `rnnedge`
// installed as a package, after one line that defines the `image` it reads (a real MNIST test digit).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fixture, row } from './helpers.js';

const JS = join(dirname(fileURLToPath(import.meta.url)), '..');
const README = readFileSync(join(JS, '..', 'README.md'), 'utf8');

test("the README's JavaScript example runs as written", () => {
  const blocks = [...README.matchAll(/^```js\n(.*?)^```/gms)].map((m) => m[1]);
  assert.equal(blocks.length, 1, 'one js block in the README');
  const folder = mkdtempSync(join(tmpdir(), 'rnnedge-readme-'));
  try {
    mkdirSync(join(folder, 'models'));
    mkdirSync(join(folder, 'node_modules'));
    symlinkSync(JS, join(folder, 'node_modules', 'rnnedge'), 'dir');
    copyFileSync(fixture('clf').path, join(folder, 'models', 'mnist-lstm.onnx'));
    copyFileSync(fixture('lm').path, join(folder, 'models', 'ptb-small.onnx'));
    const image = Array.from({ length: 28 }, (_, t) => Array.from(row(fixture('clf'), 0, t)));
    const prelude = `const image = ${JSON.stringify(image)}.map((r) => Uint8Array.from(r));\n`;
    writeFileSync(join(folder, 'example.mjs'), prelude + blocks[0]);
    const out = execFileSync(process.execPath, ['example.mjs'], { cwd: folder, encoding: 'utf8', timeout: 60_000 });
    assert.match(out, /word: '/, 'top-k printed');
    assert.ok(out.trim().split('\n').length >= 20, 'generated words printed');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
});
