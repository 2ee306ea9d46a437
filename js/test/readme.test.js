// The JavaScript blocks of the README and of docs/*.md run as written, in a folder holding the files
// they name (the fixtures' tiny models under the pages' names) and `rnnedge` installed as a package.
// A block preceded by a line `<!-- not run: REASON -->` is not run (tests/doc_blocks.py, same rule).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fixture } from './helpers.js';

const JS = join(dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = join(JS, '..');

function markdownPages(folder) {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return markdownPages(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

/** The js blocks of a page that are not marked `<!-- not run: ... -->`, with the line they start on. */
function jsBlocks(page) {
  const lines = readFileSync(page, 'utf8').split('\n');
  const found = [];
  for (let i = 0; i < lines.length; i++) {
    const opening = lines[i].match(/^( *)```(\w*)\s*$/);
    if (!opening) continue;
    let end = i + 1;
    while (end < lines.length && lines[end].trimEnd() !== `${opening[1]}\`\`\``) end++;
    let before = i - 1;
    while (before >= 0 && !lines[before].trim()) before--;
    const notRun = before >= 0 && /^\s*<!-- not run: .+ -->\s*$/.test(lines[before]);
    if (opening[2] === 'js' && !notRun) {
      const code = lines.slice(i + 1, end).map((l) => l.slice(opening[1].length)).join('\n');
      found.push({ where: `${relative(ROOT, page)}:${i + 1}`, code });
    }
    i = end;
  }
  return found;
}

const BLOCKS = [join(ROOT, 'README.md'), ...markdownPages(join(ROOT, 'docs'))].flatMap(jsBlocks);

test('the docs show the JavaScript runtime', () => {
  assert.ok(BLOCKS.some((b) => b.where.startsWith('docs/javascript.md')), 'a js block in docs/javascript.md');
});

for (const block of BLOCKS) {
  test(`${block.where} runs as written`, () => {
    const folder = mkdtempSync(join(tmpdir(), 'rnnedge-docs-'));
    try {
      mkdirSync(join(folder, 'models'));
      mkdirSync(join(folder, 'node_modules'));
      symlinkSync(JS, join(folder, 'node_modules', 'rnnedge'), 'dir');
      copyFileSync(fixture('clf').path, join(folder, 'models', 'mnist-lstm.onnx'));
      copyFileSync(fixture('lm').path, join(folder, 'models', 'ptb-small.onnx'));
      writeFileSync(join(folder, 'example.mjs'), block.code);
      const out = execFileSync(process.execPath, ['example.mjs'], { cwd: folder, encoding: 'utf8', timeout: 60_000 });
      if (block.code.includes('topK(')) assert.match(out, /word: '/, 'top-k printed');
      if (block.code.includes('generate(')) assert.ok(out.trim().split('\n').length >= 20, 'generated words printed');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
}
