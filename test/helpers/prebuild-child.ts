/**
 * Child process of test/prebuild.test.ts: loads the addon the way an installed package does
 * (no local build, only prebuilds/<platform>-<arch>/), runs a model in normal and hpi mode,
 * and prints one JSON line: which file was loaded, which shared libraries the process mapped
 * for oneDNN, OpenMP and OpenCL (/proc/self/maps), and the outputs.
 *
 *   node --import tsx test/helpers/prebuild-child.ts <packageRoot> <modelDir>
 */
import { existsSync, readFileSync } from 'node:fs';

import { addonCandidates, loadAddon } from '../../lib/native.js';
import { loadPredictor } from '../../lib/predictor.js';
import { imageLike } from './inputs.js';

const [root, dir] = process.argv.slice(2);
if (root === undefined || dir === undefined) {
  throw new Error('usage: prebuild-child.ts <packageRoot> <modelDir>');
}
const binding = loadAddon(root);
const loaded = addonCandidates(root).find((c) => existsSync(c.path));
if (loaded === undefined) throw new Error('loadAddon succeeded but no candidate file exists');
// Every later nativeBinding() call (the predictor's) must get this same instance.
process.env['PIF_NATIVE_PATH'] = loaded.path;

const shape = [1, 3, 224, 224];
const input = imageLike(shape, 3);
const outputs: Record<string, number[]> = {};
for (const runMode of ['normal', 'hpi'] as const) {
  const p = await loadPredictor(dir, { runMode });
  const out = await p.run({ [p.inputs[0]!.name]: { data: input, shape } });
  outputs[runMode] = Array.from(Object.values(out)[0]!.data as Float32Array);
  p.close();
}
const maps = readFileSync('/proc/self/maps', 'utf8')
  .split('\n')
  .map((l) => l.split(/\s+/).slice(5).join(' '))
  .filter((f) => /dnnl|gomp|libomp|OpenCL/.test(f));
console.log(
  `RESULT ${JSON.stringify({
    builderVersion: binding.builderVersion,
    loaded: loaded.path,
    maps: [...new Set(maps)],
    outputs,
  })}`,
);
