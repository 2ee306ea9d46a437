// One streaming step per feed, timed one by one: what each runtime's per-step number means.
// Shared by Node (bench/step.js) and the browser page (bench/step.html).

/** Inputs for `steps` feeds: a uint8 row of pixels (classifier) or one word id (language model). */
export function inputs(model, steps, seed = 1) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  if (model.kind === 'language_model') return Array.from({ length: steps }, () => [Math.floor(next() * model.vocabSize)]);
  return Array.from({ length: steps }, () => Uint8Array.from({ length: model.featureSize }, () => Math.floor(next() * 256)));
}

function summary(times) {
  const sorted = [...times].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { median_us: q(0.5) * 1000, p25_us: q(0.25) * 1000, p75_us: q(0.75) * 1000, steps: times.length };
}

/** Median time of one `stream.feed` of one row or one word, after `warmup` feeds. */
export async function timeSteps(model, { steps = 400, warmup = 50, now = () => performance.now() } = {}) {
  const xs = inputs(model, steps + warmup);
  let stream = model.stream();
  const times = [];
  for (let i = 0; i < xs.length; i++) {
    if (model.kind !== 'language_model' && i % 28 === 0) stream = model.stream(); // a new image every 28 rows
    const t0 = now();
    await stream.feed(xs[i]);
    const t1 = now();
    if (i >= warmup) times.push(t1 - t0);
  }
  return summary(times);
}

/** The same step through the bare onnxruntime session (no rnnedge layer): the floor. */
export async function timeBare(ort, session, model, { steps = 400, warmup = 50, now = () => performance.now() } = {}) {
  const meta = model.metadata;
  const state = model.initState(1);
  const feedsFor = (x) => {
    const feeds = {};
    for (const name of state.names) {
      const p = state.get(name);
      feeds[name] = new ort.Tensor(p.dtype, p.data, p.dims);
    }
    feeds[meta.input.name] =
      meta.kind === 'language_model'
        ? new ort.Tensor('int64', BigInt64Array.of(BigInt(x[0])), [1, 1])
        : new ort.Tensor('float32', Float32Array.from(x, (v) => v / 255), [1, 1, x.length]);
    return feeds;
  };
  const fetch = [model.streamOutputs[0], ...meta.states.map((s) => s.output)];
  const xs = inputs(model, steps + warmup);
  const times = [];
  for (let i = 0; i < xs.length; i++) {
    const t0 = now();
    await session.run(feedsFor(xs[i]), fetch);
    const t1 = now();
    if (i >= warmup) times.push(t1 - t0);
  }
  return summary(times);
}
