/**
 * The seeded pseudo-random generators of the package, its tests and scripts: the same seed
 * always gives the same sequence, on every machine (32-bit integer arithmetic only).
 */

/** mulberry32: a stream of uniform numbers in [0, 1) (multiples of 2^-32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` uniform float32 values in [lo, hi) from mulberry32(seed). */
export function seededFloats(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const next = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/**
 * The 32-bit linear congruential generator of Numerical Recipes (a = 1664525, c = 1013904223):
 * a stream of unsigned 32-bit integers, the first one the successor of `seed`. The `run`
 * command's random input comes from it.
 */
export function lcg32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}
