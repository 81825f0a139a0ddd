#!/usr/bin/env node
// What a new user's first script does after `npm install paddle-image-feature`: build the
// PP-ShiTuV2_rec test model (seeded weights; official weights need Baidu's host), createModel
// + predict on a JPEG in normal and high-performance mode, and print one JSON line with the
// feature norms and features, the runtime (Node, glibc) and every oneDNN / OpenMP / OpenCL
// library the process mapped (/proc/self/maps), so the caller can prove which copies loaded.
// Run by scripts/check-install.sh inside minimal Debian roots; plain JavaScript on purpose.
//
//   node install-smoke.mjs <image.jpg> [modelDir]
import { existsSync, readFileSync } from 'node:fs';

import { buildModel, createModel } from 'paddle-image-feature';

const [image, modelDir = '/tmp/pif-smoke-model'] = process.argv.slice(2);
if (image === undefined || !existsSync(image)) {
  console.error('usage: install-smoke.mjs <image.jpg> [modelDir]');
  process.exit(2);
}
await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 1 });
const modes = {};
for (const [mode, useHpip] of [
  ['normal', false],
  ['hpi', true],
]) {
  const model = await createModel('PP-ShiTuV2_rec', { modelDir, useHpip });
  const [r] = await model.predictAll(image);
  model.close();
  if (r.error) throw r.error;
  const f = Array.from(r.feature);
  modes[mode] = { norm: Math.hypot(...f), dim: f.length, feature: f };
  console.log(`${mode}: feature norm ${modes[mode].norm.toFixed(6)} (${f.length}-d)`);
}
const maps = [
  ...new Set(
    readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .map((l) => l.split(/\s+/).slice(5).join(' '))
      .filter((f) => /dnnl|gomp|libomp|OpenCL/.test(f)),
  ),
];
for (const m of maps) console.log(`mapped: ${m}`);
const header = process.report.getReport().header;
console.log(
  `RESULT ${JSON.stringify({
    node: process.version,
    glibc: header.glibcVersionRuntime ?? null,
    maps,
    modes,
  })}`,
);
