/**
 * Child process of test/hpi-paths.test.ts: loads a model in normal and hpi mode, runs both on
 * the same seeded input and prints one JSON line with their agreement and the hpi engine
 * report. Run under ONEDNN_MAX_CPU_ISA (and ONEDNN_VERBOSE=1, whose `isa:` line proves which
 * instruction set oneDNN used), it shows the engine on a CPU with less than this one has.
 *
 *   node --import tsx test/helpers/isa-child.ts <modelDir> <batch>
 */
import { loadPredictor, type Predictor } from '../../lib/predictor.js';
import type { Tensor } from '../../lib/tensor.js';
import { imageLike } from './inputs.js';

const [dir, batchArg] = process.argv.slice(2);
if (dir === undefined) throw new Error('usage: isa-child.ts <modelDir> <batch>');
const batch = Number(batchArg ?? '1');
const shape = [batch, 3, 224, 224];
const input = imageLike(shape, 5);

async function once(p: Predictor): Promise<Tensor> {
  const out = await p.run({ [p.inputs[0]!.name]: { data: input, shape } });
  return Object.values(out)[0]!;
}

const normal = await loadPredictor(dir, { runMode: 'normal' });
const ref = (await once(normal)).data as Float32Array;
normal.close();
const hpi = await loadPredictor(dir, { runMode: 'hpi' });
const got = (await once(hpi)).data as Float32Array;
const engine = hpi.engine;
hpi.close();
let maxAbs = 0;
let maxRef = 0;
for (let i = 0; i < ref.length; i++) {
  maxAbs = Math.max(maxAbs, Math.abs(got[i]! - ref[i]!));
  maxRef = Math.max(maxRef, Math.abs(ref[i]!));
}
console.log(`RESULT ${JSON.stringify({ maxAbs, maxRef, elements: ref.length, engine })}`);
