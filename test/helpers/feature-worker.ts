/**
 * worker_thread body for test/worker-threads.test.ts (started with tsWorker()). Each worker
 * loads the addon itself; `workerData.task` picks what it does:
 *
 * - predict:  createModel, post `ready`, wait for `go`, predict the images one by one
 *             (`rounds` times), post the features, close the model and end.
 * - transfer: run the raw predictor once on a seeded tensor and post the output's
 *             ArrayBuffer in the transfer list (zero-copy), then whether it was detached here.
 * - foreign:  given structured clones of a main-thread Predictor and NativeModel, report what
 *             using them here does.
 * - spin:     post `started` and then load / run / predict / search in a loop until
 *             terminated, or until it calls process.exit() itself
 *             (test/helpers/worker-terminate-child.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';

import { nativeBinding } from '../../lib/native.js';
import { loadPredictor } from '../../lib/predictor.js';

// lib/image-feature.js and ./inputs.js load sharp: imported only by the tasks that need them, as
// every worker start counts on the 2-core test machine.
const createModel = async (
  ...args: Parameters<typeof import('../../lib/image-feature.js').createModel>
) => (await import('../../lib/image-feature.js')).createModel(...args);

export interface FeatureWorkerData {
  task: 'predict' | 'transfer' | 'foreign' | 'spin';
  modelDir: string;
  images?: string[];
  useHpip?: boolean;
  rounds?: number;
  /** spin: what is in flight when the worker is terminated. */
  phase?: 'load' | 'run' | 'predict' | 'search';
  /** spin: the worker calls process.exit(3) itself this many ms after `started`. */
  exitAfter?: number;
  predictor?: unknown;
  nativeModel?: unknown;
}

const port = parentPort;
if (port === null) throw new Error('feature-worker.ts runs only in a worker_thread');
const data = workerData as FeatureWorkerData;
const MODEL = 'PP-ShiTuV2_rec';

async function predict(): Promise<void> {
  const model = await createModel(MODEL, {
    modelDir: data.modelDir,
    // hpi = our oneDNN engine (auto_config would pick onnxruntime for PP-ShiTuV2_rec here).
    ...(data.useHpip === true
      ? { useHpip: true, hpiConfig: { backend: 'paddle_mkldnn' as const } }
      : {}),
  });
  port?.postMessage({ type: 'ready' });
  await new Promise((resolve) => port?.once('message', resolve));
  const features: Float32Array[] = [];
  for (let r = 0; r < (data.rounds ?? 1); r++) {
    for (const img of data.images ?? []) {
      const [res] = await model.predictAll(img);
      if (res?.error) throw res.error;
      features.push(res?.feature ?? new Float32Array(0));
    }
  }
  model.close();
  port?.postMessage({ type: 'features', features });
}

async function transfer(): Promise<void> {
  const p = await loadPredictor(data.modelDir, { runMode: data.useHpip ? 'hpi' : 'normal' });
  const shape = [1, 3, 224, 224];
  const { imageLike } = await import('./inputs.js');
  const out = Object.values(await p.run({ data: imageLike(shape, 11), shape }))[0];
  p.close();
  const buf = (out?.data as Float32Array).buffer as ArrayBuffer;
  port?.postMessage({ type: 'output', buffer: buf }, [buf]);
  port?.postMessage({ type: 'after', byteLength: buf.byteLength });
}

function foreign(): void {
  const report = (f: () => unknown): string => {
    try {
      const r = f();
      return `returned ${typeof r}`;
    } catch (err) {
      return `threw ${(err as Error).name}: ${(err as Error).message}`;
    }
  };
  const native = nativeBinding() as unknown as {
    NativeModel: { prototype: { info(): unknown; close(): void } };
  };
  const m = data.nativeModel as Record<string, unknown>;
  const p = data.predictor as Record<string, unknown>;
  port?.postMessage({
    type: 'foreign',
    predictorKeys: Object.keys(p).sort(),
    predictorRun: typeof p['run'],
    nativeKeys: Object.keys(m),
    nativeRun: typeof m['run'],
    // The worker's own NativeModel methods on the clone: napi_unwrap finds no native object.
    info: report(() => native.NativeModel.prototype.info.call(m)),
    close: report(() => {
      native.NativeModel.prototype.close.call(m);
    }),
  });
}

async function spin(): Promise<never> {
  const shape = [4, 3, 224, 224];
  const input = new Float32Array(4 * 3 * 224 * 224).map((_, i) => Math.sin(i));
  const search = data.phase === 'search';
  const gallery = new Float32Array(search ? 20000 * 512 : 0).map((_, i) => Math.sin(i));
  const queries = new Float32Array(search ? 64 * 512 : 0).map((_, i) => Math.cos(i));
  const p = data.phase === 'run' ? await loadPredictor(data.modelDir) : null;
  const model =
    data.phase === 'predict' ? await createModel(MODEL, { modelDir: data.modelDir }) : null;
  port?.postMessage({ type: 'started' });
  if (data.exitAfter !== undefined) setTimeout(() => process.exit(3), data.exitAfter);
  for (;;) {
    if (data.phase === 'load') (await loadPredictor(data.modelDir, { runMode: 'hpi' })).close();
    else if (data.phase === 'run') await p?.run({ data: input, shape });
    else if (data.phase === 'predict') await model?.predictAll(data.images ?? []);
    else await nativeBinding().searchTopK(queries, gallery, 512, 5, { borrowGallery: true });
  }
}

if (data.task === 'predict') await predict();
else if (data.task === 'transfer') await transfer();
else if (data.task === 'foreign') foreign();
else await spin();
