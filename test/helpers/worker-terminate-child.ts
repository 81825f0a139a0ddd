/**
 * Child process of test/worker-threads.test.ts: ends worker_threads while native work is in
 * flight in them, from outside (Worker.terminate()) and from inside (process.exit() in the
 * worker), while the main thread keeps predicting. Prints one RESULT line and then ends on its
 * own (no process.exit): the test checks the exit status and that nothing aborted.
 *
 *   node --import tsx test/helpers/worker-terminate-child.ts <modelDir> <image>...
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { createModel } from '../../lib/image-feature.js';
import type { FeatureWorkerData } from './feature-worker.js';
import { tsWorker } from './ts-worker.js';

const [dirArg, ...images] = process.argv.slice(2);
if (dirArg === undefined || images.length === 0)
  throw new Error('usage: worker-terminate-child.ts <modelDir> <image>...');
const modelDir = dirArg;
const entry = new URL('./feature-worker.ts', import.meta.url);

// The main thread predicts all along; every result must equal the first one.
const model = await createModel('PP-ShiTuV2_rec', { modelDir });
const [first] = await model.predictAll(images[0] as string);
const want = Buffer.from((first?.feature as Float32Array).buffer);
let mainRuns = 0;
let mainDiffer = 0;
let stop = false;
const mainLoop = (async () => {
  while (!stop) {
    const [r] = await model.predictAll(images[0] as string);
    mainRuns++;
    if (!want.equals(Buffer.from((r?.feature as Float32Array).buffer))) mainDiffer++;
    await sleep(150); // leaves the 2-core test machine to the workers now and then
  }
})();

const ended: { phase: string; how: string; delay: number; code: number }[] = [];
const phases = ['load', 'run', 'predict', 'search'] as const;

/** One worker per phase at once; each ends `delay` ms after it started its loop. */
async function round(how: 'terminate' | 'process.exit', delay: number): Promise<void> {
  await Promise.all(
    phases.map(async (phase) => {
      const data: FeatureWorkerData = { task: 'spin', modelDir, images, phase };
      if (how === 'process.exit') data.exitAfter = delay;
      const w = tsWorker(entry, data);
      const exited = new Promise<number>((resolve) => w.once('exit', resolve));
      w.on('error', (err) => {
        console.error(`worker ${phase} error: ${String(err)}`);
      });
      await new Promise((resolve) => w.once('message', resolve));
      if (how === 'terminate') {
        await sleep(delay);
        await w.terminate();
      }
      ended.push({ phase, how, delay, code: await exited });
    }),
  );
}

for (const delay of [0, 150]) await round('terminate', delay);
await round('process.exit', 100);

stop = true;
await mainLoop;
model.close();
console.log(`RESULT ${JSON.stringify({ ended, mainRuns, mainDiffer })}`);
