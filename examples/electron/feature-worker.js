// Utility process (Electron utilityProcess): loads the model and runs feature extraction.
// Inference threads (OpenMP, cpuThreads) and the native libraries live here, not in the
// main or renderer processes. Jobs run one at a time, so at most cpuThreads cores are busy.
const os = require('node:os');

// Leave one core to the UI; cap at 4 (more threads help little for one image).
const cpuThreads = Math.max(1, Math.min(4, os.availableParallelism() - 1));
let modelPromise = null;
let queue = Promise.resolve();

function loadModel() {
  // paddle-image-feature is an ES module: import() it from this CommonJS file.
  modelPromise ??= import('paddle-image-feature').then((pif) =>
    // PIF_MODEL_DIR: a PaddleX inference directory; without it the official model is
    // downloaded once to ~/.paddlex (PADDLE_PDX_CACHE_HOME) as PaddleX does.
    pif.createModel('PP-ShiTuV2_rec', { modelDir: process.env.PIF_MODEL_DIR, cpuThreads }),
  );
  return modelPromise;
}

async function extract(image) {
  const model = await loadModel();
  const [result] = await model.predictAll(image);
  if (result.error) throw result.error;
  const f = result.feature; // Float32Array in a JS-owned ArrayBuffer: structured-cloned to main
  return {
    inputPath: result.inputPath,
    dim: f.length,
    norm: Math.hypot(...f),
    head: Array.from(f.subarray(0, 8), (v) => Number(v.toFixed(5))),
    cpuThreads,
  };
}

process.parentPort.on('message', ({ data }) => {
  const { id, type, image } = data;
  queue = queue.then(async () => {
    try {
      if (type !== 'extract') throw new Error(`unknown job type ${type}`);
      process.parentPort.postMessage({ id, ok: true, result: await extract(image) });
    } catch (err) {
      process.parentPort.postMessage({
        id,
        ok: false,
        error: { message: err instanceof Error ? err.message : String(err), code: err?.code },
      });
    }
  });
});

loadModel().catch(() => {
  // reported with the first job
  modelPromise = null;
});
