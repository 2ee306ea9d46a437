// Same answers as Python: every kind, on both backends, against the Python runtime's outputs
// written by tests/export/test_js_fixtures.py (batch, streams, chunked feeds, states saved and
// restored, next-word probabilities, top-k, greedy generation). Agreement within 1e-4.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { load } from '../src/node.js';
import { MODELS, assertClose, closeness, fixture, images, row, worst } from './helpers.js';

const BACKENDS = ['node', 'wasm'];

after(() => {
  const shown = BACKENDS.map((b) => `${b} ${worst[b].toExponential(1)}`).join(', ');
  console.log(`largest difference from the Python runtime: ${shown} (tolerance 1e-4)`);
});

function flat(rows) {
  return rows.flatMap((r) => Array.from(r));
}

for (const backend of BACKENDS) {
  for (const name of MODELS) {
    const fx = fixture(name);
    const kind = fx.metadata.kind;
    describe(`${name} (${kind}) on ${backend}`, () => {
      let model;
      before(async () => {
        model = await load(fx.path, { backend });
        closeness(backend);
      });
      after(() => model.dispose());

      test('metadata as Python parsed it', () => {
        const m = model.metadata;
        assert.equal(m.kind, fx.metadata.kind);
        assert.equal(m.modelId, fx.metadata.model_id);
        assert.equal(m.causal, fx.metadata.causal);
        assert.equal(m.variant, fx.metadata.variant);
        assert.deepEqual(m.states.map((s) => [s.name, s.output, s.input.shape]), fx.metadata.states.map((s) => [s.input.name, s.output, s.input.shape]));
        assert.deepEqual(m.outputs.map((o) => o.name), fx.metadata.outputs.map((o) => o.name));
        assert.deepEqual(m.quality, fx.metadata.quality);
      });

      if (fx.cases.sequences) {
        // A classifier of a user's sequences: raw values standardised per channel,
        // a lengths input, sequences of different lengths in one predict.
        const c = fx.cases;
        test('predict of real sequences of different lengths (padded, with lengths)', async () => {
          const got = await model.predict(c.sequences);
          assertClose(flat(got), c.predict_list.flat(), 'predict of a list');
          assertClose(flat(await model.predict(c.sequences, { batchSize: 3 })), c.predict_list.flat(), 'batches of 3');
        });

        test('a stream fed raw rows one by one and in chunks', async () => {
          const stream = model.stream();
          for (const [t, r] of c.sequences[0].entries()) assertClose(await stream.feed(r), c.stream_rows[t], `row ${t}`);
          const chunks = model.stream();
          let lo = 0;
          for (const [k, n] of c.chunks.sizes.entries()) {
            assertClose(await chunks.feed(c.sequences[1].slice(lo, lo + n)), c.chunks.probs[k], `chunk ${k}`);
            lo += n;
          }
        });
      } else if (fx.metadata.tokens === 'chars') {
        const c = fx.cases;
        test('a character model: text split into characters (line breaks as <eos>), probabilities, top-k', async () => {
          assert.deepEqual(Array.from(model.encode(c.text)), c.ids);
          const stream = model.stream();
          assertClose(await stream.feed(c.text), c.probs, 'after the text');
          assert.deepEqual(stream.topK(5).map((t) => t.word), c.top_k.map(([w]) => w));
        });

        test('a character model: greedy characters and perplexity', async () => {
          const got = [];
          for await (const ch of model.generate('the ', { maxWords: c.greedy.length, topK: 1 })) got.push(ch);
          assert.deepEqual(got, c.greedy);
          assert.equal(model.join(got), c.greedy.join('').replaceAll('<eos>', '\n'));
          const { text, window, value } = c.perplexity;
          const ppl = await model.perplexity(text, { window });
          assert.ok(Math.abs(ppl - value) / value <= 1e-4, `perplexity ${ppl}, Python ${value}`);
        });
      } else if (kind !== 'language_model') {
        const c = fx.cases;
        test('predict: uint8 pixels, floats in [0, 1], a prefix of rows', async () => {
          assertClose(flat(await model.predict(images(fx))), c.predict.data, 'predict');
          const floats = { data: Float64Array.from(c.images.data, (v) => v / 255), dims: c.images.dims };
          assertClose(flat(await model.predict(floats)), c.predict_float.data, 'predict floats');
          const [n, , f] = c.images.dims;
          const prefix = Array.from({ length: n }, (_, i) => Array.from({ length: 9 }, (_, t) => row(fx, i, t)));
          assertClose(flat(await model.predict(prefix)), c.predict_prefix.data, 'predict of 9 rows (nested arrays)');
          if (fx.metadata.variant !== 'int8') {
            // int8 files quantize each call's input over the whole batch: other batches, other roundings (also in Python).
            assertClose(flat(await model.predict(images(fx), { batchSize: 3 })), c.predict.data, 'predict in batches of 3');
          }
          assert.equal(f, model.featureSize);
        });

        test('a stream fed row by row gives the prediction after every row', async () => {
          for (const [i, want] of c.stream_rows.entries()) {
            const stream = model.stream();
            for (let t = 0; t < want.length; t++) assertClose(await stream.feed(row(fx, i, t)), want[t], `image ${i} row ${t}`);
          }
        });

        test('chunked feeds (typed rows and nested arrays) agree', async () => {
          const stream = model.stream();
          const nested = model.stream();
          let lo = 0;
          for (const [k, n] of c.chunks.sizes.entries()) {
            const rows = Array.from({ length: n }, (_, t) => row(fx, 0, lo + t));
            const chunk = { data: Uint8Array.from(flat(rows)), dims: [n, model.featureSize] };
            assertClose(await stream.feed(chunk), c.chunks.probs[k], `chunk ${k} of ${n} rows`);
            assertClose(await nested.feed(rows), c.chunks.probs[k], `nested chunk ${k}`);
            lo += n;
          }
        });

        test("state read, restored from Python's arrays, and branched", async () => {
          const { image, rows, saved, after: want } = c.state;
          const stream = model.stream();
          const first = Array.from({ length: rows }, (_, t) => row(fx, image, t));
          await stream.feed(first); // one chunk, as Python fed it (int8 files quantize over a chunk)
          const state = stream.state;
          for (const [part, arr] of Object.entries(saved)) {
            assert.deepEqual(state.get(part).dims, arr.dims, `state part ${part} dims`);
            assertClose(state.get(part).data, arr.data, `state part ${part}`);
          }
          const fromPython = model.stream();
          fromPython.state = model.stateFromArrays(saved);
          const branch = stream.copy();
          for (let t = rows; t < 28; t++) {
            const x = row(fx, image, t);
            assertClose(await fromPython.feed(x), want[t - rows], `restored, row ${t}`);
            assertClose(await branch.feed(x), want[t - rows], `branch, row ${t}`);
          }
          assert.equal(stream.state, state, 'the original stream did not move');
          stream.state = state;
          assertClose(await stream.feed(row(fx, image, rows)), want[0], 'restored its own state');
          const json = model.stateFromArrays(JSON.parse(JSON.stringify(state)));
          const revived = model.stream();
          revived.state = json;
          assertClose(await revived.feed(row(fx, image, rows)), want[0], 'restored through JSON');
        });

        test('step: the functional core with batch 2', async () => {
          const { x, outputs, state } = c.step;
          const result = await model.step({ data: Float32Array.from(x.data), dims: x.dims }, model.initState(2));
          for (const [k, v] of Object.entries(outputs)) assertClose(result.outputs[k].data, v.data, `output ${k}`);
          for (const [k, v] of Object.entries(state)) {
            assert.deepEqual(result.state.get(k).dims, v.dims);
            assertClose(result.state.get(k).data, v.data, `state ${k}`);
          }
        });
      } else {
        const c = fx.cases;
        test('text splits into the ids Python gives (odd whitespace, unknown words)', () => {
          assert.deepEqual(Array.from(model.encode(c.encode.text)), c.encode.ids);
        });

        test('next-word probabilities, top-k, state and branches', async () => {
          const stream = model.stream();
          assertClose(await stream.feed(c.prompt), c.after_prompt, 'after the prompt');
          const top = stream.topK(5);
          assert.deepEqual(top.map((t) => t.word), c.top_k.map(([w]) => w));
          assertClose(top.map((t) => t.probability), c.top_k.map(([, p]) => p), 'top-k probabilities');
          const saved = stream.state;
          for (const [part, arr] of Object.entries(c.saved)) assertClose(saved.get(part).data, arr.data, `state ${part}`);
          const branch = stream.copy();
          assertClose(await stream.feed('it'), c.after_it, 'after "it"');
          assert.deepEqual(stream.topK(10).map((t) => t.word), c.top_k_after_it.map(([w]) => w));
          assertClose(await branch.feed(['it']), c.after_it, 'branch fed ["it"]');
          const fromPython = model.stream();
          fromPython.state = model.stateFromArrays(c.saved);
          assertClose(await fromPython.feed('it'), c.after_it, "Python's state restored");
        });

        test('word by word, and ids', async () => {
          const stream = model.stream();
          for (const [i, w] of ['the', 'stock', 'market'].entries()) assertClose(await stream.feed(w), c.word_by_word[i], `after ${w}`);
          assertClose(await model.stream().feed(c.ids.ids), c.ids.probs, 'ids as numbers');
          assertClose(await model.stream().feed(Int32Array.from(c.ids.ids)), c.ids.probs, 'ids as Int32Array');
          assertClose(await model.stream().feed(BigInt64Array.from(c.ids.ids, BigInt)), c.ids.probs, 'ids as BigInt64Array');
        });

        const stale = !c.perplexity && 'fixtures written before the perplexity case: rerun tests/export/test_js_fixtures.py';
        test('perplexity of PTB test lines, state carried across windows', { skip: stale }, async () => {
          const { text, window, value } = c.perplexity;
          const got = await model.perplexity(text, { window });
          assert.ok(Math.abs(got - value) / value <= 1e-4, `perplexity ${got}, Python ${value}`);
        });

        test('greedy generation gives the same words', async () => {
          const words = [];
          for await (const w of model.generate(c.greedy.prompt, { maxWords: c.greedy.max_words, topK: 1, seed: 0 })) words.push(w);
          assert.deepEqual(words, c.greedy.words);
          const start = [];
          for await (const w of model.generate(null, { maxWords: c.greedy.from_start.length, topK: 1 })) start.push(w);
          assert.deepEqual(start, c.greedy.from_start);
        });

        test('seeded generation gives the same words (one sampler: PCG32, top-k by probability then id)', async () => {
          const { prompt, max_words: maxWords, top_k: topK, seed, words } = c.sampled;
          const got = [];
          for await (const w of model.generate(prompt, { maxWords, topK, seed })) got.push(w);
          assert.deepEqual(got, words);
        });
      }
    });
  }
}
