// One streaming step per feed, timed one by one: what each runtime's per-step number means.
// Shared by Node (bench/step.js) and the browser page (bench/step.html).

/** Inputs for `steps` feeds: a uint8 row of pixels (classifier) or one word id (language model). */
export function inputs(model, steps, seed = 1) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  if (model.kind === 'language_model') return Array.from({ length: steps }, () => [Math.floor(next() * model.vocabSize)]);
  return Array.from({ length: steps }, () => Uint8Array.from({ length: model.featureSize }, () => Math.floor(next() * 256)));
}

const BLOCK = 20; // steps timed together: a page that is not cross-origin isolated gets a 100 µs clock

function summary(blocks) {
  const perStep = blocks.map((t) => t / BLOCK).sort((a, b) => a - b);
  const q = (p) => perStep[Math.min(perStep.length - 1, Math.floor(p * perStep.length))];
  return { median_us: q(0.5) * 1000, p25_us: q(0.25) * 1000, p75_us: q(0.75) * 1000, steps: perStep.length * BLOCK };
}

/**
 * Warm up for at least `ms`: V8 first runs onnxruntime-web's WebAssembly in its baseline compiler
 * and tiers hot functions up in the background, so early steps are several times slower.
 */
async function warm(step, ms, now) {
  const start = now();
  for (let i = 0; i < 60 || now() - start < ms; i++) await step(i);
}

/** Median time of one `stream.feed` of one row or one word (blocks of 20 timed together), after a warm-up. */
export async function timeSteps(model, { steps = 400, warmupMs = 2000, now = () => performance.now() } = {}) {
  const xs = inputs(model, steps);
  const words = model.stream();
  let warmStream = model.stream();
  await warm(async (i) => {
    if (i % BLOCK === 0 && model.kind !== 'language_model') warmStream = model.stream();
    await warmStream.feed(xs[i % xs.length]);
  }, warmupMs, now);
  const blocks = [];
  for (let i = 0; i < xs.length; i += BLOCK) {
    // A classifier reads a new image (a fresh stream, made outside the timed block) every 20 rows.
    const stream = model.kind === 'language_model' ? words : model.stream();
    const t0 = now();
    for (let j = i; j < i + BLOCK && j < xs.length; j++) await stream.feed(xs[j]);
    blocks.push(now() - t0);
  }
  return summary(blocks);
}

/** The same step through the bare onnxruntime session (no rnnedge layer): the floor. */
export async function timeBare(ort, session, model, { steps = 400, warmupMs = 2000, now = () => performance.now() } = {}) {
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
    if (meta.lengths) feeds[meta.lengths.name] = new ort.Tensor('int64', BigInt64Array.of(1n), [1]); // one valid step
    return feeds;
  };
  const fetch = [model.streamOutputs[0], ...meta.states.map((s) => s.output)];
  const xs = inputs(model, steps);
  await warm((i) => session.run(feedsFor(xs[i % xs.length]), fetch), warmupMs, now);
  const blocks = [];
  for (let i = 0; i < xs.length; i += BLOCK) {
    const t0 = now();
    for (let j = i; j < i + BLOCK && j < xs.length; j++) await session.run(feedsFor(xs[j]), fetch);
    blocks.push(now() - t0);
  }
  return summary(blocks);
}
