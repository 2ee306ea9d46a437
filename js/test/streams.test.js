// Passive streams (tests/runtime/test_stream_calls.py in JavaScript): the model advances a list of
// streams in one onnxruntime call, each as it would advance alone, all or nothing.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConcurrentUseError, ConfigError, InputError, ModelClosedError, Stream, TokenError, load } from '../src/node.js';
import { FIXTURES, assertClose, fixture, maxDiff, row } from './helpers.js';

const lmFx = fixture('lm');
const clfFx = fixture('clf');
const OWN = join(FIXTURES, 'own');

/** Every part of two states, value for value. */
function assertSameState(got, want, what) {
  assert.deepEqual(got.names, want.names);
  for (const name of want.names) assert.equal(maxDiff(got.get(name).data, want.get(name).data), 0, `${what}: state part ${name}`);
}

/** Results of a call with others equal what each stream alone gives: exactly, as the Python runtime asserts. */
function assertSameResult(got, want, what) {
  const flat = (r) => (Array.isArray(r) ? r.flatMap((f) => [...f]) : [...r]);
  assert.equal(maxDiff(flat(got), flat(want)), 0, what);
}

for (const backend of ['node', 'wasm']) {
  describe(`model.feed (${backend}): a list of streams in one call`, () => {
    let lm;
    let clf;
    before(async () => {
      lm = await load(lmFx.path, { backend });
      clf = await load(clfFx.path, { backend });
    });
    after(async () => {
      await lm.dispose();
      await clf.dispose();
    });

    test('language model: each stream advances as it would alone', async () => {
      const streams = [lm.stream(), lm.stream(), lm.stream()];
      const alone = [lm.stream(), lm.stream(), lm.stream()];
      for (const step of [[[1], [2], [3]], ['the', 'a', 'market'], [Int32Array.of(7, 8), 'stock rose', [9, 10]]]) {
        const results = await lm.feed(streams, step);
        assert.equal(results.length, 3);
        for (let i = 0; i < 3; i++) {
          assert.equal(results[i].length, lm.vocabSize);
          assertSameResult(results[i], await alone[i].feed(step[i]), `stream ${i} fed ${step[i]}`);
          assert.equal(streams[i].last, results[i]);
          assertSameState(streams[i].state, alone[i].state, `stream ${i}`);
        }
      }
      // a stream of a call with others goes on alone, and joins another group
      assertSameResult(await streams[1].feed('fell'), await alone[1].feed('fell'), 'alone after a call with others');
      const [two, zero] = await lm.feed([streams[2], streams[0]], [[4], [5]]);
      assertSameResult(two, await alone[2].feed([4]), 'stream 2 in a new group');
      assertSameResult(zero, await alone[0].feed([5]), 'stream 0 in a new group');
      assertClose((await lm.feed([lm.stream()], ['the']))[0], lmFx.cases.word_by_word[0], "one stream: the Python runtime's answer");
    });

    test('language model: a long feed runs in windows, for every stream of the call', async () => {
      const ids = (seed) => Array.from({ length: 300 }, (_, t) => (seed * 31 + t * 7) % lm.vocabSize);
      const streams = [lm.stream(), lm.stream()];
      const results = await lm.feed(streams, [ids(1), ids(2)]);
      for (let i = 0; i < 2; i++) {
        const alone = lm.stream();
        assertSameResult(results[i], await alone.feed(ids(i + 1)), `stream ${i}`);
        assertSameState(streams[i].state, alone.state, `stream ${i}`);
      }
    });

    test('classifier: rows of several images in one call, as each alone and as Python', async () => {
      const streams = [0, 1, 2, 3].map(() => clf.stream());
      const alone = [0, 1, 2, 3].map(() => clf.stream());
      for (let t = 0; t < 3; t++) {
        const rows = [0, 1, 2, 3].map((i) => (t % 2 ? Array.from(row(clfFx, i, t)) : row(clfFx, i, t)));
        const results = await clf.feed(streams, rows);
        for (let i = 0; i < 4; i++) {
          assertSameResult(results[i], await alone[i].feed(rows[i]), `image ${i}, row ${t}`);
          assertSameState(streams[i].state, alone[i].state, `image ${i}`);
          if (i < 2) assertClose(results[i], clfFx.cases.stream_rows[i][t], `image ${i}, row ${t} vs Python`);
        }
      }
    });
  });
}

describe('model.feed: other kinds', () => {
  // Files of users' own modules (tests/export/test_own_module.py): taggers, classifiers and language models
  // of one or several recurrent submodules (states of different layouts), GRU and LSTM.
  const own = readdirSync(OWN).filter((f) => f.endsWith('.json'));
  for (const name of own) {
    test(`${name}: three sequences in one call, as each alone (bidirectional files: one per call)`, async () => {
      const doc = JSON.parse(readFileSync(join(OWN, name), 'utf8'));
      const model = await load(join(OWN, doc.model));
      try {
        const seqs = doc.sequences.slice(0, 3);
        if (!model.causal) {
          await assert.rejects(model.feed([model.stream(), model.stream()], seqs.slice(0, 2)), ConfigError);
          return;
        }
        const streams = seqs.map(() => model.stream());
        const alone = seqs.map(() => model.stream());
        for (const [lo, hi] of [[0, 1], [1, 3]]) {
          const chunks = seqs.map((s) => s.slice(lo, hi));
          const results = await model.feed(streams, chunks);
          for (let i = 0; i < seqs.length; i++) {
            assertSameResult(results[i], await alone[i].feed(chunks[i]), `sequence ${i}, steps ${lo}..${hi}`);
            assertSameState(streams[i].state, alone[i].state, `sequence ${i}`);
          }
          if (doc.task === 'tagger') assert.ok(results.every((r) => r.length === hi - lo), 'one result per frame');
        }
      } finally {
        await model.dispose();
      }
    });
  }

  test('a bidirectional model feeds one stream per call', async () => {
    const bi = await load(fixture('bi').path);
    try {
      const streams = [bi.stream(), bi.stream()];
      await assert.rejects(bi.feed(streams, [row(clfFx, 0, 0), row(clfFx, 1, 0)]), (e) => e instanceof ConfigError && /feed each stream alone/.test(e.message));
      assert.equal(streams[0].last, null);
      const [one] = await bi.feed([streams[0]], [row(clfFx, 0, 0)]);
      assertSameResult(one, await bi.stream().feed(row(clfFx, 0, 0)), 'a list of one');
    } finally {
      await bi.dispose();
    }
  });
});

describe('model.feed: a failed call changes no stream', () => {
  let lm;
  let clf;
  before(async () => {
    lm = await load(lmFx.path);
    clf = await load(clfFx.path);
  });
  after(async () => {
    await lm.dispose();
    await clf.dispose();
  });

  const kept = (streams) => streams.map((s) => ({ state: s.state, last: s.last }));
  const unchanged = (streams, before) => streams.forEach((s, i) => {
    assert.equal(s.state, before[i].state, `stream ${i}: state`);
    assert.equal(s.last, before[i].last, `stream ${i}: last`);
  });

  test('bad inputs, bad lists: typed errors naming what is wrong', async () => {
    const streams = [lm.stream(null, { strict: true }), lm.stream(null, { strict: true })];
    await lm.feed(streams, [[1], [2]]);
    const before = kept(streams);
    const cases = [
      [[[1], [lm.vocabSize]], TokenError, /input 1: token ids must be in \[0, 10000\), got \[10000\]/],
      [[[1], 'the qwertyuiop'], TokenError, /input 1: 1 word\(s\) not in the 10000-word vocabulary: "qwertyuiop"/],
      [[[1], [2, 3]], InputError, /same number of steps, got lengths \[1, 2\]/],
      [[Float32Array.of(1), [2]], InputError, /input 0: token ids must be .*got float32/],
      [[[1]], InputError, /one input per stream \(2\), got/],
      ['the market', InputError, /one input per stream \(2\), got/],
    ];
    for (const [inputs, type, pattern] of cases) {
      await assert.rejects(lm.feed(streams, inputs), (e) => e instanceof type && pattern.test(e.message));
      unchanged(streams, before);
    }
    await assert.rejects(lm.feed([streams[0], streams[0]], [[1], [2]]), /appears twice/);
    await assert.rejects(lm.feed([streams[0], clf.stream()], [[1], [2]]), /every stream of one call must be a stream of this model/);
    await assert.rejects(lm.feed([], []), /non-empty array of streams/);
    await assert.rejects(lm.feed(streams[0], [1]), /non-empty array of streams/);
    unchanged(streams, before);
    // and the streams go on as if nothing had happened
    const alone = lm.stream();
    await alone.feed([1]);
    assertSameResult((await lm.feed(streams, [[3], [3]]))[0], await alone.feed([3]), 'after the errors');
  });

  test('a classifier: one bad row among good ones', async () => {
    const streams = [clf.stream(), clf.stream()];
    await clf.feed(streams, [row(clfFx, 0, 0), row(clfFx, 1, 0)]);
    const before = kept(streams);
    await assert.rejects(clf.feed(streams, [row(clfFx, 0, 1), new Uint8Array(27)]), (e) => e instanceof InputError && /input 1: each row must have 28 values/.test(e.message));
    await assert.rejects(clf.feed(streams, [row(clfFx, 0, 1), [NaN, ...row(clfFx, 1, 1).slice(1)]]), /input 1: rows contain NaN/);
    unchanged(streams, before);
  });

  test('a disposed model', async () => {
    const model = await load(lmFx.path);
    const streams = [model.stream(), model.stream()];
    await model.feed(streams, ['the', 'a']);
    const before = kept(streams);
    await model.dispose();
    await assert.rejects(model.feed(streams, ['stock', 'new']), ModelClosedError);
    await assert.rejects(streams[0].feed('stock'), ModelClosedError);
    unchanged(streams, before);
  });

  test('a stream busy with another feed: the call is refused and takes nothing', async () => {
    const streams = [lm.stream(), lm.stream()];
    const inFlight = streams[1].feed('the');
    await assert.rejects(lm.feed(streams, [[1], [2]]), (e) => e instanceof ConcurrentUseError && /stream 1 of this call is busy/.test(e.message));
    assert.equal(streams[0].last, null);
    const call = lm.feed([streams[0]], [[1]]); // streams[0] was left free
    await assert.rejects(streams[0].feed([2]), (e) => e instanceof ConcurrentUseError && /this stream is busy/.test(e.message));
    assert.throws(() => (streams[0].state = lm.initState(1)), ConcurrentUseError);
    assertClose(await inFlight, lmFx.cases.word_by_word[0], 'the feed in flight');
    await call;
    await lm.feed(streams, [[3], [4]]); // both free again
  });
});

describe('a stream is a value: its options and its last result', () => {
  let lm;
  before(async () => {
    lm = await load(lmFx.path);
  });
  after(() => lm.dispose());

  test('strict is the stream option; options come second', async () => {
    assert.equal(lm.stream().strict, false);
    const strict = lm.stream(null, { strict: true });
    assert.ok(strict instanceof Stream && strict.strict);
    assert.throws(() => lm.stream({ strict: true }), (e) => e instanceof InputError && /takes its options second/.test(e.message));
    assert.throws(() => lm.stream(null, { strict: 1 }), /strict must be true or false/);
    await strict.feed('the');
    const twin = strict.copy();
    assert.ok(twin.strict && twin.last === strict.last);
    assertSameState(twin.state, strict.state, 'copy');
    await assert.rejects(twin.feed('qwertyuiop'), TokenError);
    const fromState = lm.stream(strict.state);
    assertSameResult(await fromState.feed('stock'), await strict.feed('stock'), 'a stream from a state');
  });

  test("topK is the model's topK of last", async () => {
    const stream = lm.stream();
    await stream.feed('the stock');
    assert.deepEqual(stream.topK(5), lm.topK(stream.last, 5));
    const clf = await load(clfFx.path);
    try {
      const rows = clf.stream();
      const probs = await rows.feed(row(clfFx, 0, 0));
      const expected = [...probs.keys()].sort((a, b) => probs[b] - probs[a] || a - b).slice(0, 3);
      assert.deepEqual(rows.topK(3), expected.map((i) => ({ label: clf.labels[i], probability: probs[i] })));
      assert.deepEqual(rows.topK(3), clf.topK(probs, 3));
      assert.throws(() => clf.topK(probs.subarray(1), 3), /probs must be one result \(10 values\)/);
      assert.throws(() => clf.topK(probs, 11), /k must be an integer in \[1, 10\]/);
    } finally {
      await clf.dispose();
    }
  });
});
