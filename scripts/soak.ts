/**
 * Soak test: N sequential runs of one model, watching the process RSS for growth after
 * warm-up (leaks show up as steady growth). Not a unit test: run it by hand or in a
 * benchmark job.
 *
 *   npx tsx scripts/soak.ts [--model PP-ShiTuV2_rec|DIR] [--runs 1000] [--warmup 50] [--batch 1]
 *
 * Prints a table and a JSON line: RSS after warm-up, at the end, peak, and growth in %.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { buildModel, BUILDABLE_MODELS } from '../lib/builder.js';
import { loadPredictor } from '../lib/predictor.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'PP-ShiTuV2_rec' },
    runs: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '50' },
    batch: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
  },
});
const runs = Number(values.runs);
const warmup = Number(values.warmup);
const batch = Number(values.batch);

let dir = values.model;
let tmp: string | undefined;
if ((BUILDABLE_MODELS as readonly string[]).includes(dir)) {
  tmp = mkdtempSync(path.join(tmpdir(), 'pif-soak-'));
  await buildModel(dir, tmp, { seed: 1 });
  dir = tmp;
}
const p = await loadPredictor(dir, { cpuThreads: Number(values.threads) });
const input = p.inputs[0];
if (input === undefined) throw new Error('model has no inputs');
const shape = input.shape.map((d, i) => (i === 0 && d < 0 ? batch : d));
const n = shape.reduce((a, b) => a * b, 1);
const data = new Float32Array(n).map((_, i) => Math.sin(i * 0.37));
const mb = (b: number) => b / 2 ** 20;
let afterWarmup = 0;
let peak = 0;
const started = Date.now();
for (let r = 0; r < runs; r++) {
  await p.run({ [input.name]: { data, shape } });
  const rss = process.memoryUsage.rss();
  peak = Math.max(peak, rss);
  if (r + 1 === warmup) afterWarmup = rss;
  if ((r + 1) % Math.max(1, Math.floor(runs / 10)) === 0) {
    console.log(`run ${String(r + 1).padStart(5)}  rss ${mb(rss).toFixed(1)} MB`);
  }
}
const end = process.memoryUsage.rss();
const growth = afterWarmup > 0 ? (100 * (end - afterWarmup)) / afterWarmup : 0;
const result = {
  model: values.model,
  runs,
  warmup,
  batch,
  seconds: (Date.now() - started) / 1000,
  rssAfterWarmupMB: +mb(afterWarmup).toFixed(1),
  rssEndMB: +mb(end).toFixed(1),
  rssPeakMB: +mb(peak).toFixed(1),
  growthPercent: +growth.toFixed(2),
};
console.log(JSON.stringify(result));
p.close();
if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
