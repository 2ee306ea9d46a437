// The shared corpus of the file format (tests/contract/test_contract_corpus.py writes it): the
// JavaScript runtime must read, refuse (with the same error), split and sample exactly as the
// Python runtime does, and its constants must be the schema's (runtime/rnnedge.schema.json).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as errors from '../src/errors.js';
import { tokenize } from '../src/language.js';
import {
  COMMON_FIELDS,
  FORMAT_VERSION,
  KIND_SECTIONS,
  MODEL_KINDS,
  SECTION_OF,
  TOKEN_MODES,
  VARIANTS,
  parseMetadata,
} from '../src/metadata.js';
import { load } from '../src/node.js';
import { Pcg32, sample } from '../src/sampling.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CORPUS = join(HERE, 'fixtures', 'contract', 'corpus.json');
const SCHEMA = JSON.parse(readFileSync(join(HERE, '..', '..', 'runtime', 'rnnedge.schema.json'), 'utf8'));

if (!existsSync(CORPUS)) {
  throw new Error(
    `no corpus at ${CORPUS}: write it with \`python -m pytest tests/contract/test_contract_corpus.py\` (from the repository root)`,
  );
}
const corpus = JSON.parse(readFileSync(CORPUS, 'utf8'));

function refusal(fn, error, what) {
  assert.throws(fn, (e) => {
    assert.equal(e.constructor.name, error.class, `${what}: ${e.constructor.name}: ${e.message}`);
    assert.ok(e.message.includes(error.message), `${what}: "${e.message}" lacks "${error.message}"`);
    return true;
  });
}

describe('the schema', () => {
  test('the parser takes its version, kinds, fields and sections from runtime/rnnedge.schema.json', () => {
    assert.equal(FORMAT_VERSION, SCHEMA.properties.format_version.const);
    assert.deepEqual([...MODEL_KINDS], SCHEMA.properties.kind.enum);
    assert.deepEqual([...VARIANTS], SCHEMA.properties.variant.enum);
    assert.deepEqual([...COMMON_FIELDS].sort(), Object.keys(SCHEMA.properties).sort());
    const kinds = SCHEMA.$defs.kinds;
    assert.deepEqual(Object.keys(KIND_SECTIONS).sort(), Object.keys(kinds).sort());
    for (const [name, section] of Object.entries(KIND_SECTIONS)) {
      assert.equal(section.title, kinds[name].title);
      assert.deepEqual([...section.fields].sort(), Object.keys(kinds[name].properties).sort());
      assert.deepEqual([...section.fields].sort(), [...kinds[name].required].sort());
    }
    const sectionOf = {};
    for (const rule of SCHEMA.allOf) {
      const kind = rule.if.properties.kind;
      for (const k of kind.enum ?? [kind.const]) sectionOf[k] = rule.then.$ref.split('/').pop();
    }
    assert.deepEqual({ ...SECTION_OF }, sectionOf);
    assert.deepEqual([...TOKEN_MODES], kinds.language_model.properties.tokens.enum);
  });
});

describe('the shared corpus', () => {
  test(`metadata: ${corpus.metadata.length} cases read or refused as Python does`, () => {
    for (const c of corpus.metadata) {
      if (c.error === null) parseMetadata(c.text);
      else refusal(() => parseMetadata(c.text), c.error, c.name);
    }
  });

  for (const c of corpus.models) {
    test(`model file ${c.file}: ${c.error ? `refused (${c.error.message})` : c.kind}`, async () => {
      const path = join(HERE, 'fixtures', 'contract', c.file);
      if (c.error === null) {
        const model = await load(path);
        assert.equal(model.kind ?? model.metadata.kind, c.kind);
        await model.dispose();
        return;
      }
      await assert.rejects(load(path), (e) => {
        assert.ok(e instanceof errors[c.error.class], `${c.file}: ${e.constructor.name}: ${e.message}`);
        assert.ok(e.message.includes(c.error.message), `${c.file}: "${e.message}" lacks "${c.error.message}"`);
        return true;
      });
    });
  }

  test(`tokens: ${corpus.tokens.length} strings split as Python splits them`, () => {
    for (const c of corpus.tokens) {
      const got = tokenize(c.text, c.tokens, '<eos>', { closeLines: c.close_lines });
      assert.deepEqual(got, c.expected, `${JSON.stringify(c.text)} as ${c.tokens}, closeLines ${c.close_lines}`);
    }
  });

  test('sampler: PCG32 outputs and draws equal to Python', () => {
    for (const g of corpus.sampler.generators) {
      const rng = new Pcg32(g.seed);
      assert.deepEqual(Array.from({ length: g.uint32.length }, () => rng.nextUint32()), g.uint32, `seed ${g.seed}`);
      assert.deepEqual([new Pcg32(g.seed).uniform()], g.uniform, `seed ${g.seed}`);
    }
    const probs = Float32Array.from(corpus.sampler.probs);
    for (const d of corpus.sampler.draws) {
      const rng = new Pcg32(d.seed);
      const ids = Array.from({ length: d.ids.length }, () => sample(probs, d.temperature, d.top_k, rng));
      assert.deepEqual(ids, d.ids, `temperature ${d.temperature}, top_k ${d.top_k}, seed ${d.seed}`);
    }
  });
});
