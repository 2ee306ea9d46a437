// Files exported from a user's own PyTorch modules (tests/export/test_own_module.py writes them with the
// module's own outputs): the JavaScript runtime gives those outputs, for ragged batches and chunked streams.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { InputError, TaggerModel, load } from '../src/node.js';

const OWN = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'own');
const TOLERANCE = 1e-4;

function maxDiff(got, want) {
  assert.equal(got.length, want.length, `lengths differ: ${got.length} vs ${want.length}`);
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
  return d;
}
const NAMES = existsSync(OWN) ? readdirSync(OWN).filter((f) => f.endsWith('.json')) : [];

test('fixtures of own modules are there', () => {
  assert.ok(NAMES.length >= 5, `write them with \`python -m pytest tests/export/test_own_module.py -k js\` (found ${NAMES})`);
});

const flat = (nested) => (Array.isArray(nested) ? nested.flatMap(flat) : [nested]);
const values = (result) => (Array.isArray(result) ? result.flatMap((r) => [...r]) : [...result]);

for (const name of NAMES) {
  test(`own module ${name}: predict of ragged sequences and a chunked stream give the module's outputs`, async () => {
    const doc = JSON.parse(readFileSync(join(OWN, name), 'utf8'));
    const model = await load(join(OWN, doc.model));
    try {
      // A language model: each sequence of ids fed whole to a fresh stream; the others: one ragged predict.
      const lm = doc.task === 'language-model';
      const got = lm ? await Promise.all(doc.sequences.map((s) => model.stream().feed(s))) : await model.predict(doc.sequences);
      assert.equal(got.length, doc.sequences.length);
      got.forEach((g, i) => assert.ok(maxDiff(values(g), flat(doc.predict[i])) < TOLERANCE, `${name}: sequence ${i}`));
      const stream = model.stream();
      let start = 0;
      for (const [k, size] of doc.chunks.entries()) {
        const result = await stream.feed(doc.sequences[0].slice(start, start + size));
        start += size;
        assert.ok(maxDiff(values(result), flat(doc.stream[k])) < TOLERANCE, `${name}: chunk ${k}`);
      }
      if (doc.task === 'tagger') {
        assert.ok(model instanceof TaggerModel);
        const before = stream.last;
        await assert.rejects(stream.feed(Array.from({ length: 257 }, () => new Array(12).fill(0))), InputError);
        assert.equal(stream.last, before); // a refused feed changes nothing
        const frame = before[before.length - 1]; // topK ranks the last frame's labels
        const expected = [...frame.keys()].sort((a, b) => frame[b] - frame[a] || a - b).slice(0, 2);
        assert.deepEqual(stream.topK(2), expected.map((i) => ({ label: model.labels[i], probability: frame[i] })));
      }
    } finally {
      await model.dispose();
    }
  });
}
