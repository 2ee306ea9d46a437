// Shared by the tests: the fixtures Python wrote (tests/export/test_js_fixtures.py) and small tools.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const TOLERANCE = 1e-4;

if (!existsSync(join(FIXTURES, 'index.json'))) {
  throw new Error(
    `no fixtures in ${FIXTURES}: write them with \`python -m pytest tests/export/test_js_fixtures.py\` ` +
      '(from the repository root; `make test-js` does it when they are missing)',
  );
}

export const MODELS = JSON.parse(readFileSync(join(FIXTURES, 'index.json'), 'utf8')).models;

const cache = new Map();
/** {model, metadata, cases} of a fixture, and `path` and `bytes` of its .onnx file. */
export function fixture(name) {
  if (!cache.has(name)) {
    const doc = JSON.parse(readFileSync(join(FIXTURES, `${name}.json`), 'utf8'));
    doc.path = join(FIXTURES, doc.model);
    doc.bytes = new Uint8Array(readFileSync(doc.path));
    cache.set(name, doc);
  }
  return cache.get(name);
}

/** Largest absolute difference between two flat number sequences of equal length. */
export function maxDiff(got, want) {
  assert.equal(got.length, want.length, `lengths differ: ${got.length} vs ${want.length}`);
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(Number(got[i]) - Number(want[i])));
  return d;
}

/** The largest difference every assertClose has seen so far, by label (see `closeness`). */
export const worst = { all: 0 };
let label = 'all';
/** Label the differences assertClose records from now on (e.g. by backend). */
export function closeness(name) {
  label = name;
  worst[name] ??= 0;
}

export function assertClose(got, want, what, tolerance = TOLERANCE) {
  const d = maxDiff(got, want);
  worst.all = Math.max(worst.all, d);
  worst[label] = Math.max(worst[label] ?? 0, d);
  assert.ok(d <= tolerance, `${what}: largest difference ${d} > ${tolerance}`);
  return d;
}

/** uint8 images of a fixture as {data: Uint8Array, dims}. */
export function images(fx) {
  const { data, dims } = fx.cases.images;
  return { data: Uint8Array.from(data), dims };
}

/** Row t of image i as a Uint8Array(28). */
export function row(fx, i, t) {
  const [, rows, f] = fx.cases.images.dims;
  const start = (i * rows + t) * f;
  return Uint8Array.from(fx.cases.images.data.slice(start, start + f));
}

// -- protobuf writing, to make broken model files from good ones -------------------------------
export function varint(n) {
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A length-delimited field: key, length, payload. */
export function field(number, payload) {
  const body = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  return Uint8Array.from([...varint(number * 8 + 2), ...varint(body.length), ...body]);
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function readVarint(buf, pos) {
  let result = 0;
  let scale = 1;
  for (;;) {
    const b = buf[pos++];
    result += (b & 0x7f) * scale;
    if (!(b & 0x80)) return [result, pos];
    scale *= 128;
  }
}

/** The model bytes with their rnnedge metadata replaced by `text` (or left out when text is null). */
export function withMetadata(bytes, text, key = 'rnnedge') {
  const kept = [];
  let pos = 0;
  while (pos < bytes.length) {
    const start = pos;
    let tag;
    [tag, pos] = readVarint(bytes, pos);
    const wire = tag % 8;
    if (wire === 0) [, pos] = readVarint(bytes, pos);
    else if (wire === 2) {
      let n;
      [n, pos] = readVarint(bytes, pos);
      pos += n;
    } else pos += wire === 1 ? 8 : 4;
    if (Math.floor(tag / 8) !== 14) kept.push(bytes.subarray(start, pos));
  }
  if (text !== null) kept.push(field(14, concat(field(1, key), field(2, text))));
  return concat(...kept);
}

/** The fixture's metadata JSON (as stored) after `edit(raw)` changed the parsed object. */
export function editedMetadata(fx, edit) {
  const raw = JSON.parse(JSON.stringify(fx.metadata));
  edit(raw);
  return withMetadata(fx.bytes, JSON.stringify(raw));
}
