/**
 * Benchmark (issue 4): normal mode vs high-performance mode (fp32 and bf16) vs ONNX Runtime
 * on the three target architectures, with seeded random weights from buildModel.
 *
 *   node --import tsx scripts/bench.ts [options]      (npm run bench -- [options])
 *   paddle-image-feature bench [options]
 *
 * For every model and thread count, all modes are loaded side by side and timed in
 * interleaved rounds (each round runs every mode once, in rotating order), so slow drifts of
 * the machine (clocks, neighbours) hit all modes alike; ratios are medians of per-round
 * paired ratios. Each mode's output is compared with normal mode's on the same input
 * (cosine per image, max|Δ|). Load time and peak RSS come from one child process per
 * (model, mode, batch), so that they are not mixed up with the other modes' memory.
 * "% of peak" divides by this machine's fp32 FMA peak, measured at start by the native
 * peak probe (native/runtime/peak_probe.cc) with the same thread count.
 *
 * Not a test: timings depend on the machine. `--tiny` is the CI smoke setting.
 */

import { BENCH_USAGE, parseBenchArgs, type BenchIo, type BenchOptions } from './options.js';
import { runBench } from './run.js';
import { errorMessage } from './runners.js';

export {
  BENCH_MODELS,
  BENCH_MODES,
  BENCH_USAGE,
  parseBenchArgs,
  type BenchIo,
  type BenchMode,
  type BenchModelKey,
  type BenchOptions,
} from './options.js';
export { formatSection, type BenchRatio, type BenchReport, type BenchRow } from './report.js';
export { type ChildResult } from './child.js';
export { runBench } from './run.js';
export { compareOutputs, type OutputCheck, type PeakResult } from './runners.js';

// ---------------------------------------------------------------------------------------
// Entry points

/** `bench` with command-line arguments; returns the exit code (2: usage error). */
export async function benchMain(args: readonly string[], io: BenchIo): Promise<number> {
  let opts: BenchOptions | null;
  try {
    opts = parseBenchArgs(args);
  } catch (err) {
    io.stderr(`paddle-image-feature bench: ${errorMessage(err)}\n\n${BENCH_USAGE}`);
    return 2;
  }
  if (opts === null) {
    io.stdout(BENCH_USAGE);
    return 0;
  }
  await runBench(opts, io);
  return 0;
}
