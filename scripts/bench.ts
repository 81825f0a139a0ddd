/**
 * Benchmark of issue 4: normal mode vs hpi (fp32, bf16) vs ONNX Runtime, with the output
 * check against normal mode, load time and peak RSS. See lib/bench/ and `--help`.
 *
 *   npm run bench -- [--models shitu,vitb,vitl] [--batch 1,8] [--threads 1,2] [--tiny] ...
 *   node --import tsx scripts/bench.ts --tiny
 *
 * Not a test: the numbers depend on the machine. Writes bench-results/bench-<date>.json.
 */
import { benchMain } from '../lib/bench/index.js';

process.exitCode = await benchMain(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
});
