// Bad input, bad files, states, streams and disposal: typed errors whose messages name what
// came in and what was expected, and a failed call that leaves the state as it was.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ConcurrentUseError,
  ConfigError,
  InputError,
  ModelClosedError,
  ModelFileError,
  ProviderError,
  RnnEdgeError,
  State,
  StateError,
  TokenError,
  load,
  readMetadata,
  splitWords,
  tokenizeLines,
} from '../src/node.js';
import { assertClose, concat, editedMetadata, field, fixture, row, withMetadata } from './helpers.js';

const clfFx = fixture('clf');
const lmFx = fixture('lm');
let clf;
let bi;
let lm;

before(async () => {
  clf = await load(clfFx.path);
  bi = await load(fixture('bi').path);
  lm = await load(lmFx.path);
});
after(async () => {
  for (const m of [clf, bi, lm]) await m.dispose();
});

async function rejects(promise, type, pattern) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e?.constructor?.name}: ${e?.message}`);
    assert.ok(e instanceof RnnEdgeError);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

describe('model files and their metadata', () => {
  const cases = [
    ['a newer format version', (m) => (m.format_version = 3), /format version 3.*upgrade rnnedge/],
    ['a field format 1 does not have', (m) => (m.preprocessing = { scale: 1, mean: 0, std: 1 }), /preprocessing is not part of format 1/],
    ['an unknown kind', (m) => (m.kind = 'transformer'), /kind is 'transformer'/],
    ['a missing field', (m) => delete m.model_id, /model_id is missing/],
    ['a field of the wrong type', (m) => (m.causal = 'yes'), /causal has type string, expected boolean/],
    ['a boolean where a number belongs', (m) => (m.quality.test_accuracy = true), /quality must map names to numbers/],
    ['a shape entry out of range', (m) => (m.input.shape = ['batch', 'sequence', -1]), /input.shape has entry -1/],
    ['a shape without the batch axis first', (m) => (m.input.shape = [1, 'sequence', 28]), /must start with the 'batch' axis/],
    ['no labels', (m) => delete m.labels, /labels is missing: a classifier's metadata must carry it/],
    ['labels that do not match the outputs', (m) => m.labels.push('10'), /output logits \(batch, 11\)/],
    ['bad standardisation', (m) => (m.standardize.std = m.standardize.std.map(() => 0)), /standardize.std has 0/],
    ['a state name used twice', (m) => (m.states[1].input.name = 'h'), /each name must appear once/],
    ['a metadata output the graph lacks', (m) => (m.states[0].output = 'h_final'), /graph and metadata disagree: .*h_final/],
    ['a dtype the graph does not declare', (m) => (m.states[0].input.dtype = 'float16'), /h: graph has float32 \[1,batch,24\], metadata float16/],
  ];
  for (const [what, edit, pattern] of cases) {
    test(`refused: ${what}`, () => rejects(load(editedMetadata(clfFx, edit)), ModelFileError, pattern));
  }

  test('refused: a vocabulary that repeats a word, or ids outside it', async () => {
    await rejects(load(editedMetadata(lmFx, (m) => (m.vocabulary[5] = m.vocabulary[4]))), ModelFileError, /repeats 1 word/);
    await rejects(load(editedMetadata(lmFx, (m) => (m.unk_id = 10 ** 6))), ModelFileError, /unk_id is 1000000/);
  });

  test('refused: not JSON, oversized, absent', async () => {
    await rejects(load(withMetadata(clfFx.bytes, '{"format_version": 1,')), ModelFileError, /not valid JSON/);
    await rejects(load(withMetadata(clfFx.bytes, 'x'.repeat(8 * 1024 * 1024 + 1))), ModelFileError, /over the 8388608-byte limit/);
    await rejects(load(withMetadata(clfFx.bytes, null)), ModelFileError, /carries no rnnedge metadata/);
  });

  test('refused: truncated, garbage, empty, missing', async () => {
    await rejects(load(clfFx.bytes.subarray(0, clfFx.bytes.length - 100)), ModelFileError, /not a valid ONNX protobuf/);
    await rejects(load(new TextEncoder().encode('<html>not found</html>')), ModelFileError, /not a valid ONNX protobuf|no rnnedge/);
    await rejects(load(new Uint8Array(0)), ModelFileError, /empty/);
    await rejects(load('/nonexistent/model.onnx'), ModelFileError, /cannot read model file .*ENOENT/);
  });

  test('refused: a tensor whose data lives outside the file (its path is never opened)', async () => {
    // ModelProto.graph { initializer { name: "w", data_location: EXTERNAL } } ahead of the real model.
    const tensor = concat(field(8, 'w'), Uint8Array.of(14 * 8, 1));
    const bytes = concat(field(7, field(5, tensor)), clfFx.bytes);
    await rejects(load(bytes), ModelFileError, /keeps tensor data outside the file \(w\)/);
  });

  test('refused: an fp16 variant (no float16 LSTM on the CPU or in WebAssembly)', () =>
    rejects(load(editedMetadata(clfFx, (m) => (m.variant = 'fp16'))), ProviderError, /fp16 model/));

  test('readMetadata reads a file without onnxruntime', () => {
    const meta = readMetadata(lmFx.bytes);
    assert.equal(meta.kind, 'language_model');
    assert.equal(meta.vocabulary.length, lmFx.metadata.vocabulary.length);
    assert.ok(Object.isFrozen(meta) && Object.isFrozen(meta.vocabulary));
  });

  test('bad options', async () => {
    await rejects(load(clfFx.path, { threads: 0 }), ConfigError, /threads must be an integer/);
    await rejects(load(clfFx.path, { backend: 'cuda' }), ConfigError, /backend must be/);
    await rejects(load(clfFx.path, { optimization: 'max' }), ConfigError, /optimization must be one of/);
    await rejects(load(42), ConfigError, /load takes a path/);
  });
});

describe('classifier input', () => {
  const bad = [
    ['a row of the wrong length', () => new Uint8Array(27), /each row must have 28 values/],
    ['NaN', () => Float32Array.from({ length: 28 }, (_, i) => (i ? 0.5 : NaN)), /NaN or infinity/],
    ['an empty chunk', () => [], /must not be empty|empty/],
    ['a string', () => 'pixels', /must be an array/],
    ['three axes fed to a stream', () => ({ data: new Uint8Array(56), dims: [1, 2, 28] }), /feed takes one row/],
    ['ragged rows', () => [new Uint8Array(28), new Uint8Array(27)], /rectangular/],
  ];
  for (const [what, make, pattern] of bad) {
    test(`feed refuses ${what} and keeps its state`, async () => {
      const stream = clf.stream();
      const good = await stream.feed(row(clfFx, 0, 0));
      const before = stream.state;
      await rejects(stream.feed(make()), InputError, pattern);
      assert.equal(stream.state, before);
      assert.equal(stream.last, good);
      assertClose(await stream.feed(row(clfFx, 0, 1)), clfFx.cases.stream_rows[0][1], 'the next row after the error');
    });
  }

  test('predict refuses what is not (N, T, features)', async () => {
    await rejects(clf.predict(row(clfFx, 0, 0)), InputError, /images must have shape \[N, T, 28\]/);
    await rejects(clf.predict({ data: new Uint8Array(28), dims: [1, 1, 27] }), InputError, /data holds 28 values but dims/);
    await rejects(clf.predict([[row(clfFx, 0, 0)]], { batchSize: 0 }), InputError, /batchSize/);
  });

  test('step refuses raw pixels: the graph input is float32, normalised', async () => {
    await rejects(clf.step({ data: new Uint8Array(28), dims: [1, 1, 28] }, clf.initState(1)), InputError, /x must be float32 of shape \[N, T, 28\], got uint8/);
  });
});

describe('states', () => {
  test('a state is an immutable value: get() copies, the object is frozen', async () => {
    const stream = clf.stream();
    await stream.feed(row(clfFx, 0, 0));
    const state = stream.state;
    assert.ok(state instanceof State && Object.isFrozen(state));
    const h = state.get('h');
    const copy = h.data.slice();
    h.data.fill(99);
    assert.deepEqual(state.get('h').data, copy);
    assert.deepEqual(state.names, ['h', 'c', 'h_sum', 'steps']);
    assert.match(String(state), /State\(batchSize=1, h: float32\[1, 1, 24\]/);
  });

  test('a state from another model, batch or shape is refused', async () => {
    const stream = clf.stream();
    assert.throws(() => (stream.state = bi.initState(1)), (e) => e instanceof StateError && /belongs to model/.test(e.message));
    assert.throws(() => (stream.state = clf.initState(2)), (e) => e instanceof StateError && /batch 2/.test(e.message));
    const parts = clf.initState(1).toJSON().parts;
    assert.throws(() => clf.stateFromArrays({ ...parts, h: { dims: [1, 1, 23], data: new Array(23).fill(0) } }), /state part h must be float32 of shape \[1, N, 24\]/);
    assert.throws(() => clf.stateFromArrays({ ...parts, c: { dims: [1, 1, 24], data: new Array(24).fill(NaN) } }), /c contains NaN/);
    const { steps, ...missing } = parts;
    assert.throws(() => clf.stateFromArrays(missing), (e) => e instanceof StateError && /exactly the parts/.test(e.message));
    assert.throws(() => clf.stateFromArrays({ ...parts, extra: steps }), /extra \[extra\]/);
    assert.throws(() => (stream.state = 'zero'), StateError);
  });

  test('initState refuses a bad batch', () => {
    assert.throws(() => clf.initState(0), InputError);
    assert.throws(() => clf.initState(1.5), InputError);
  });
});

describe('language model input', () => {
  test('strict streams refuse unknown words; others read <unk>', async () => {
    await rejects(lm.stream(null, { strict: true }).feed('the zyzzyva'), TokenError, /1 word\(s\) not in the 10000-word vocabulary: "zyzzyva"/);
    const loose = await lm.stream().feed('the zyzzyva');
    assertClose(loose, await lm.stream().feed(['the', '<unk>']), 'unknown read as <unk>');
  });

  test('ids outside the vocabulary, empty input, non-integers', async () => {
    const stream = lm.stream();
    await rejects(stream.feed([1, 10000]), TokenError, /ids must be in \[0, 10000\), got \[10000\]/);
    await rejects(stream.feed([-1]), TokenError, /got \[-1\]/);
    await rejects(stream.feed([]), InputError, /no token ids/);
    await rejects(stream.feed('   '), InputError, /no words given/);
    await rejects(stream.feed([1.5]), InputError, /integers/);
    await rejects(stream.feed(new Float32Array(2)), InputError, /integer typed array, got float32/);
    await rejects(stream.feed({ words: 'the' }), InputError, /token ids must be/);
    assert.equal(stream.last, null);
  });

  test('topK before any feed, and bad k', async () => {
    const stream = lm.stream();
    assert.throws(() => stream.topK(), (e) => e instanceof InputError && /no prediction yet/.test(e.message));
    await stream.feed('the');
    assert.throws(() => stream.topK(0), /k must be an integer in \[1, 10000\]/);
    assert.equal(stream.topK(10000).length, 10000);
  });

  test('generate: deterministic for a seed, checked options', async () => {
    const run = async (seed) => {
      const words = [];
      for await (const w of lm.generate('the company', { maxWords: 10, temperature: 0.9, topK: 50, seed })) words.push(w);
      return words.join(' ');
    };
    assert.equal(await run(7), await run(7));
    assert.notEqual(await run(7), await run(8));
    assert.throws(() => lm.generate('the', { temperature: 0 }), /temperature must be a finite number > 0/);
    assert.throws(() => lm.generate('the', { topK: 0 }), /topK must be null or an integer/);
    assert.throws(() => lm.generate('the', { seed: -1 }), /seed must be null or an integer >= 0/);
    assert.throws(() => lm.generate('the', { maxWords: 1.5 }), /maxWords/);
    const tiny = [];
    for await (const w of lm.generate('the', { maxWords: 3, temperature: 1e-300 })) tiny.push(w);
    assert.equal(tiny.length, 3);
  });

  test('perplexity refuses what it cannot score', async () => {
    await rejects(lm.perplexity(42), InputError, /text must be a string/);
    await rejects(lm.perplexity('the', { window: 0 }), InputError, /window must be an integer >= 1/);
    await rejects(lm.perplexity('the zyzzyva', { strict: true }), TokenError, /zyzzyva/);
    assert.ok((await lm.perplexity('the\n')) > 1);
  });

  test('text splits as Python splits it', () => {
    assert.deepEqual(splitWords(' a\u00a0b\x1cc\x85d\ufeffe \u200bf '), ['a', 'b', 'c', 'd\ufeffe', '\u200bf']);
    assert.deepEqual(tokenizeLines('a b\r\n\nc\n'), ['a', 'b', '<eos>', '<eos>', 'c', '<eos>']);
  });
});

describe('streams and models over time', () => {
  test('a second feed before the first finished is refused, the first completes', async () => {
    const stream = lm.stream();
    const first = stream.feed('the');
    await rejects(stream.feed('stock'), ConcurrentUseError, /busy/);
    assert.throws(() => (stream.state = lm.initState(1)), ConcurrentUseError);
    assertClose(await first, lmFx.cases.word_by_word[0], 'the first feed');
  });

  test('many streams of one model in flight at once', async () => {
    const streams = Array.from({ length: 8 }, () => lm.stream());
    const results = await Promise.all(streams.map((s) => s.feed('the')));
    for (const r of results) assertClose(r, lmFx.cases.word_by_word[0], 'concurrent stream');
  });

  test('reset, and last', async () => {
    const stream = clf.stream();
    await stream.feed(row(clfFx, 0, 0));
    stream.reset();
    assert.equal(stream.last, null);
    assertClose(await stream.feed(row(clfFx, 0, 0)), clfFx.cases.stream_rows[0][0], 'after reset');
  });

  for (const backend of ['node', 'wasm']) {
    test(`dispose (${backend}): later calls throw ModelClosedError, and a load/dispose loop does not grow`, async () => {
      const model = await load(lmFx.bytes, { backend });
      const stream = model.stream();
      await stream.feed('the');
      await model.dispose();
      await rejects(stream.feed('stock'), ModelClosedError, /disposed/);
      await model.dispose(); // twice is fine
      const rss = async (n) => {
        for (let i = 0; i < n; i++) {
          const m = await load(lmFx.bytes, { backend });
          await m.stream().feed('the company');
          await m.release();
        }
        globalThis.gc?.();
        return process.memoryUsage().rss;
      };
      await rss(10);
      const warm = await rss(30); // the wasm heap reaches its high-water mark over the first loads
      const later = await rss(30);
      const grown = (later - warm) / 2 ** 20;
      assert.ok(grown < 24, `resident memory grew ${grown.toFixed(1)} MB over 30 loads of a ${(lmFx.bytes.length / 2 ** 20).toFixed(1)} MB model`);
    });
  }
});
