// End-to-end predict() throughput vs pure inference, and event-loop lag during predict.
//
//   npm run bench:predict -- [--images 200] [--batch 8] [--threads 1] [--hpi|--normal] [--json]
//
// Builds the PP-ShiTuV2_rec test model, writes N JPEG photos-like images of about 1000x750,
// then in one run: (1) pure inference: the same preprocessed batches through Predictor.run
// only; (2) predictAll() over the files (one native call per batch: JPEG decode by the addon,
// or by sharp before the call with PIF_NATIVE_JPEG=0 or an addon without libjpeg;
// OpenCV-exact preprocessing + inference + L2);
// both after a warm-up, interleaved 3 times, medians reported. During (2) the event-loop delay
// is sampled with perf_hooks.monitorEventLoopDelay (p50/p99/max). A script, not a test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import sharp from 'sharp';

import { cpuLine, machineInfo } from '../lib/bench/machine.js';
import { buildModel } from '../lib/builder.js';
import { nativeBinding } from '../lib/native.js';
import { createModel } from '../lib/image-feature.js';
import { decodeItem } from '../lib/input.js';
import { loadPredictor } from '../lib/predictor.js';
import { preprocessImage } from '../lib/preprocess.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? (process.argv[i + 1] as string) : def;
}
const images = Number(arg('images', '200'));
const batch = Number(arg('batch', '8'));
const threads = Number(arg('threads', '1'));
const hpi = !process.argv.includes('--normal');
const asJson = process.argv.includes('--json');
const log = (s: string) => {
  if (!asJson) console.log(s);
};

const dir = mkdtempSync(path.join(tmpdir(), 'pif-bench-predict-'));
try {
  const modelDir = path.join(dir, 'model');
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 1 });
  const files: string[] = [];
  for (let k = 0; k < images; k++) {
    const w = 1000 + (k % 5) * 8;
    const h = 750 - (k % 3) * 6;
    const px = Buffer.alloc(w * h * 3);
    let s = k + 1;
    for (let i = 0; i < px.length; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      px[i] = (s >>> 16) & 255;
    }
    const f = path.join(dir, `img${String(k).padStart(4, '0')}.jpg`);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .blur(3)
      .jpeg({ quality: 90 })
      .toFile(f);
    files.push(f);
  }
  const model = await createModel('PP-ShiTuV2_rec', {
    modelDir,
    // hpi here is our oneDNN engine (auto_config would pick onnxruntime for PP-ShiTuV2_rec).
    ...(hpi ? { useHpip: true, hpiConfig: { backend: 'paddle_mkldnn' as const } } : {}),
    cpuThreads: threads,
    batchSize: batch,
  });
  // Pre-decoded, preprocessed batches for the pure-inference baseline.
  const tensors: Float32Array[] = [];
  for (const f of files) {
    const { tensor } = await preprocessImage(
      await decodeItem({ kind: 'file', path: f }),
      model.preprocess,
    );
    tensors.push(tensor);
  }
  const pure = await loadPredictor(modelDir, {
    runMode: hpi ? 'hpi' : 'normal',
    cpuThreads: threads,
  });
  const per = 3 * 224 * 224;
  const inferOnly = async () => {
    const t0 = performance.now();
    for (let i = 0; i < tensors.length; i += batch) {
      const n = Math.min(batch, tensors.length - i);
      const data = new Float32Array(per * n);
      for (let k = 0; k < n; k++) data.set(tensors[i + k] as Float32Array, k * per);
      await pure.run({ data, shape: [n, 3, 224, 224] });
    }
    return performance.now() - t0;
  };
  const endToEnd = async (lag: ReturnType<typeof monitorEventLoopDelay> | null) => {
    lag?.enable();
    const t0 = performance.now();
    const res = await model.predictAll(files);
    const ms = performance.now() - t0;
    lag?.disable();
    if (res.some((r) => r.error !== null)) throw new Error('a prediction failed');
    return ms;
  };
  await inferOnly();
  await endToEnd(null);
  const pureMs: number[] = [];
  const e2eMs: number[] = [];
  // One monitor per predictAll run (re-enabling a monitor would count the gap in between).
  const lags: ReturnType<typeof monitorEventLoopDelay>[] = [];
  for (let r = 0; r < 3; r++) {
    pureMs.push(await inferOnly());
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lags.push(lag);
    e2eMs.push(await endToEnd(lag));
  }
  const worst = (f: (h: ReturnType<typeof monitorEventLoopDelay>) => number) =>
    Math.max(...lags.map(f)) / 1e6;
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
  const machine = await machineInfo();
  const result = {
    machine,
    images,
    batch,
    threads,
    mode: hpi ? 'hpi' : 'normal',
    jpegDecode:
      nativeBinding().jpegDecode === true && process.env['PIF_NATIVE_JPEG'] !== '0'
        ? 'addon'
        : 'sharp',
    pureInferenceMs: med(pureMs),
    endToEndMs: med(e2eMs),
    pureImagesPerSec: (images / med(pureMs)) * 1000,
    endToEndImagesPerSec: (images / med(e2eMs)) * 1000,
    endToEndShareOfPure: med(pureMs) / med(e2eMs),
    eventLoopDelayMs: {
      p50: worst((h) => h.percentile(50)),
      p99: worst((h) => h.percentile(99)),
      max: worst((h) => h.max),
    },
  };
  log(cpuLine(machine));
  log(
    `PP-ShiTuV2_rec ${result.mode}, ${images} JPEGs ~1000x750 (decoded by ${result.jpegDecode}), batch ${batch}, ${threads} inference thread(s)`,
  );
  log(
    `  pure inference : ${result.pureInferenceMs.toFixed(0)} ms (${result.pureImagesPerSec.toFixed(1)} img/s)`,
  );
  log(
    `  predictAll     : ${result.endToEndMs.toFixed(0)} ms (${result.endToEndImagesPerSec.toFixed(1)} img/s)`,
  );
  log(`  end-to-end / pure throughput: ${(result.endToEndShareOfPure * 100).toFixed(1)} %`);
  log(
    `  event-loop delay during predictAll (worst of 3 runs): p50 ${result.eventLoopDelayMs.p50.toFixed(2)} ms, ` +
      `p99 ${result.eventLoopDelayMs.p99.toFixed(2)} ms, max ${result.eventLoopDelayMs.max.toFixed(2)} ms`,
  );
  if (asJson) console.log(JSON.stringify(result));
  pure.close();
  model.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
