/**
 * Child process of the kill -9 test (test/vector-index.test.ts): saves an index to the same
 * directory over and over, each time with different contents, until it is killed.
 *
 *   node --import tsx index-kill-child.ts <dir> <Flat|HNSW> <n> <dim>
 *
 * Contents of version s: ids s .. s+n-1, label `L<id>`, vector `killTestVector(id, dim)`. Each
 * round removes the smallest id and adds the next one, so version s+1 follows s. It starts from
 * the index in <dir> when there is one (so it also checks that a killed save left it loadable),
 * else from version 0. Prints `begin <s>` before a save of version s and `saved <s>` after it.
 */
import { pathToFileURL } from 'node:url';

import { createIndex, loadIndex } from '../../lib/vector-index/index.js';
import { lcg32 } from '../../lib/rng.js';
import type { VectorIndex } from '../../lib/vector-index/types.js';

/** A deterministic unit vector per id. */
export function killTestVector(id: number, dim: number): Float32Array {
  const next = lcg32((id * 2654435761 + 12345) >>> 0);
  const v = new Float32Array(dim);
  let norm = 0;
  for (let d = 0; d < dim; d++) {
    const x = next() / 4294967296 - 0.5;
    v[d] = x;
    norm += x * x;
  }
  norm = Math.sqrt(norm);
  for (let d = 0; d < dim; d++) v[d] = (v[d] as number) / norm;
  return v;
}

function vectors(first: number, count: number, dim: number): Float32Array {
  const out = new Float32Array(count * dim);
  for (let i = 0; i < count; i++) out.set(killTestVector(first + i, dim), i * dim);
  return out;
}

async function main(): Promise<void> {
  const [dir, type, nArg, dimArg] = process.argv.slice(2);
  if (dir === undefined || (type !== 'Flat' && type !== 'HNSW')) {
    throw new Error('usage: index-kill-child.ts <dir> <Flat|HNSW> <n> <dim>');
  }
  const n = Number(nArg);
  const dim = Number(dimArg);
  let index: VectorIndex;
  let s: number;
  try {
    index = await loadIndex(dir, { hnsw: { addThreads: 1 } });
    s = index.ids()[0] ?? 0;
  } catch {
    index = createIndex({ type: type, metric: 'IP', dim, hnsw: { addThreads: 1 } });
    await index.add({
      features: vectors(0, n, dim),
      labels: Array.from({ length: n }, (_, i) => `L${i}`),
    });
    s = 0;
  }
  for (;;) {
    process.stdout.write(`begin ${s}\n`);
    await index.save(dir);
    process.stdout.write(`saved ${s}\n`);
    await index.remove([s]);
    const id = s + n;
    await index.add({ features: killTestVector(id, dim), labels: [`L${id}`] });
    s++;
  }
}

// Run only as a script (the test imports killTestVector from here).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
