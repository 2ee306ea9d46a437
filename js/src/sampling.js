// The one sampler of rnnedge: top-k, a portable random generator, and a draw from next-token
// probabilities, exactly as docs/metadata.md (section 5) specifies and runtime/sampling.py does:
// the same seed, prompt, temperature and top-k give the same tokens in Python, here and through
// `rnnedge serve`. Every step is exact IEEE arithmetic except x ** (1 / temperature) at a
// temperature other than 1, which each language's pow rounds within an ulp.

const MASK64 = (1n << 64n) - 1n;
const MULTIPLIER = 6364136223846793005n;
const SEQUENCE = 54n; // the PCG reference's stream constant: pcg32_srandom_r(seed, 54)

/** PCG32 (XSH-RR, 64-bit state), seeded as the PCG reference's pcg32_srandom_r(seed, 54). */
export class Pcg32 {
  /** `seed`: an integer (a Number up to 2^53 - 1, or a BigInt) in [0, 2^64). */
  constructor(seed) {
    this.increment = ((SEQUENCE << 1n) | 1n) & MASK64;
    this.state = 0n;
    this.nextUint32();
    this.state = (this.state + BigInt.asUintN(64, BigInt(seed))) & MASK64;
    this.nextUint32();
  }

  /** The next 32 random bits, as a Number in [0, 2^32). */
  nextUint32() {
    const old = this.state;
    this.state = (old * MULTIPLIER + this.increment) & MASK64;
    const xorshifted = Number((((old >> 18n) ^ old) >> 27n) & 0xffffffffn);
    const rotation = Number(old >> 59n);
    return ((xorshifted >>> rotation) | (xorshifted << (-rotation & 31))) >>> 0;
  }

  /** A number in [0, 1) from 53 random bits: 27 of one output and 26 of the next, exact in float64. */
  uniform() {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }
}

/** The k likeliest ids of `probs` (length V), likeliest first, equal probabilities in order of id. */
export function topKIds(probs, k) {
  const best = []; // ids, most probable first; ties keep the lower id first
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i];
    if (best.length === k && !(p > probs[best[k - 1]])) continue;
    let j = best.length === k ? k - 1 : best.length;
    while (j > 0 && p > probs[best[j - 1]]) j--;
    best.splice(j, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/**
 * One id drawn from next-token probabilities `probs` (V): weights (p[i] / max p) ** (1 / temperature)
 * in float64 (no power at temperature 1); with topK only the ids topKIds picks keep theirs; then the
 * first id whose running sum of weights (in id order) exceeds rng.uniform() * total (the last id of
 * positive weight if rounding leaves none).
 */
export function sample(probs, temperature, topK, rng) {
  const v = probs.length;
  let peak = -Infinity;
  let low = Infinity;
  for (let i = 0; i < v; i++) {
    peak = Math.max(peak, probs[i]);
    low = Math.min(low, probs[i]);
  }
  if (!(Number.isFinite(peak) && peak > 0) || low < 0) {
    throw new RangeError(`probabilities must be finite, >= 0 and not all 0, got max ${peak}`);
  }
  const weights = new Float64Array(v);
  const power = 1 / temperature;
  for (let i = 0; i < v; i++) {
    const w = probs[i] / peak;
    weights[i] = temperature === 1 ? w : w ** power;
  }
  if (topK !== null && topK < v) {
    const kept = new Float64Array(v);
    for (const i of topKIds(probs, topK)) kept[i] = weights[i];
    weights.set(kept);
  }
  const running = new Float64Array(v);
  let total = 0;
  for (let i = 0; i < v; i++) running[i] = total += weights[i];
  const target = rng.uniform() * total;
  let lo = 0;
  let hi = v; // the first id whose running sum > target
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (running[mid] > target) hi = mid;
    else lo = mid + 1;
  }
  if (lo < v) return lo;
  for (let i = v - 1; i >= 0; i--) if (weights[i] > 0) return i;
  return v - 1;
}
