/** The benchmark run: peak probe, load children, interleaved timing rounds, the report. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { runChild, type ChildResult } from './child.js';
import { machineInfo } from './machine.js';
import {
  BENCH_MODELS,
  PAIRS,
  type BenchIo,
  type BenchMode,
  type BenchModelKey,
  type BenchOptions,
} from './options.js';
import {
  formatSection,
  mb,
  median,
  ms,
  withoutJson,
  type BenchRatio,
  type BenchReport,
  type BenchRow,
} from './report.js';
import {
  asPeak,
  compareOutputs,
  errorMessage,
  inputFor,
  openRunner,
  prepareModel,
  probePeakBinding,
  type Artifacts,
  type PeakResult,
  type Runner,
} from './runners.js';

interface Live {
  mode: BenchMode;
  runner: Runner;
  times: (number | undefined)[];
  out?: Float32Array;
  failed?: string;
}

/** Warm-up and interleaved rounds for one (model, threads, batch); fills rows and ratios. */
async function timeBatch(
  live: Live[],
  batch: number,
  opts: BenchOptions,
  log: (s: string) => void,
): Promise<number> {
  const { data, shape } = inputFor(batch, opts.seed);
  for (const l of live) {
    l.times = [];
    delete l.out;
    if (l.failed !== undefined) continue;
    try {
      for (let i = 0; i < opts.warmup; i++) {
        const out = await l.runner.run(data, shape);
        l.out ??= out;
      }
    } catch (err) {
      l.failed = `n/a: ${errorMessage(err)}`;
    }
  }
  const active = () => live.filter((l) => l.failed === undefined);
  const maxRounds = opts.iters ?? (opts.minTime === undefined ? 100 : 100000);
  const minRounds = opts.iters !== undefined ? 1 : 3;
  const minTime = opts.minTime ?? (opts.iters === undefined ? 10 : Infinity);
  const t0 = performance.now();
  let round = 0;
  for (; round < maxRounds; round++) {
    if (round >= minRounds && (performance.now() - t0) / 1000 >= minTime) break;
    const act = active();
    if (act.length === 0) break;
    const order = act.map((_, i) => act[(i + round) % act.length]);
    for (const l of order) {
      if (l === undefined || l.failed !== undefined) continue;
      try {
        const t = performance.now();
        await l.runner.run(data, shape);
        l.times[round] = performance.now() - t;
      } catch (err) {
        l.failed = `n/a: ${errorMessage(err)}`;
      }
    }
  }
  log(`  batch ${batch}: ${round} rounds in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return round;
}

type Log = (s: string) => void;

/** The peak per thread count, measured first, on an idle process. */
function probePeaks(opts: BenchOptions, log: Log): { probes: PeakResult[]; probeError?: string } {
  const probes: PeakResult[] = [];
  const probe = probePeakBinding();
  if (probe === null) {
    const probeError =
      'this build of the addon has no probePeak (native/runtime/peak_probe.cc not bound yet); ' +
      '% of peak is left empty';
    log(probeError);
    return { probes, probeError };
  }
  for (const t of opts.threads) {
    const p = asPeak(probe({ threads: t, seconds: opts.probeSeconds }), t);
    if (p === null) {
      const probeError = 'probePeak returned an unexpected value';
      log(probeError);
      return { probes, probeError };
    }
    probes.push(p);
    log(
      `peak, ${t} thread(s): FMA ${p.fmaGflops.toFixed(1)} GFLOP/s, sgemm ${p.sgemmGflops.toFixed(1)} GFLOP/s`,
    );
  }
  return { probes };
}

/** Peak RSS of children that only import a runtime, per batch: what "model MB" subtracts. */
async function runBaselines(
  opts: BenchOptions,
  report: BenchReport,
  loadThreads: number,
  log: Log,
): Promise<void> {
  for (const batch of opts.batches) {
    for (const runtime of ['pif', 'ort'] as const) {
      const r = await runChild({
        mode: null,
        runtime,
        modelDir: '',
        onnxFile: '',
        threads: loadThreads,
        batch,
        seed: opts.seed,
      });
      report.baselines.push({ batch, threads: loadThreads, runtime, maxRssKB: r.maxRssKB });
      log(
        `baseline child (imports ${runtime} only), batch ${batch}: peak RSS ${mb(r.maxRssKB)} MB`,
      );
    }
  }
}

/** Load time and peak RSS, one child per (mode, batch), before this process loads anything. */
async function measureLoads(
  opts: BenchOptions,
  name: string,
  art: Artifacts,
  loadThreads: number,
  log: Log,
): Promise<Map<string, ChildResult>> {
  const loads = new Map<string, ChildResult>();
  for (const mode of opts.modes) {
    for (const batch of opts.batches) {
      const r = await runChild({ mode, ...art, threads: loadThreads, batch, seed: opts.seed });
      loads.set(`${mode}/${batch}`, r);
      log(
        `load ${name} ${mode} batch ${batch}: ` +
          (r.error !== undefined
            ? `failed (${r.error.slice(0, 120)})`
            : `${ms(r.loadMs ?? 0)} ms, first run ${ms(r.firstRunMs ?? 0)} ms, peak RSS ${mb(r.maxRssKB)} MB`),
      );
    }
  }
  return loads;
}

/** Every mode loaded side by side; a mode that fails to load stays in the list as failed. */
async function openLive(opts: BenchOptions, art: Artifacts, threads: number): Promise<Live[]> {
  const live: Live[] = [];
  for (const mode of opts.modes) {
    try {
      live.push({
        mode,
        runner: await openRunner(mode, art.modelDir, art.onnxFile, threads),
        times: [],
      });
    } catch (err) {
      live.push({
        mode,
        runner: {
          run: () => Promise.reject(new Error('not loaded')),
          close: () => Promise.resolve(),
        },
        times: [],
        failed: `n/a: ${errorMessage(err)}`,
      });
    }
  }
  return live;
}

/** Where one (model, threads, batch) is in the run. */
interface Cell {
  key: BenchModelKey;
  threads: number;
  batch: number;
  peak: number | null;
}

/** One row per mode of a timed batch: speed, agreement with the reference, load and RSS. */
function rowsFor(
  cell: Cell,
  live: readonly Live[],
  loads: ReadonlyMap<string, ChildResult>,
  report: BenchReport,
): BenchRow[] {
  const { key, threads, batch, peak } = cell;
  const { name, gflopPerImage } = BENCH_MODELS[key];
  const ref =
    live.find((l) => l.mode === 'normal' && l.failed === undefined) ??
    live.find((l) => l.failed === undefined);
  return live.map((l) => {
    const row: BenchRow = {
      model: key,
      modelName: name,
      threads,
      batch,
      mode: l.mode,
      status: l.failed ?? 'ok',
    };
    const samples = l.times.filter((t): t is number => t !== undefined);
    if (l.failed === undefined && samples.length > 0) {
      const med = median(samples);
      const gflops = (gflopPerImage * batch) / (med / 1000);
      Object.assign(row, {
        rounds: samples.length,
        samplesMs: samples.map((t) => +t.toFixed(3)),
        msPerBatch: med,
        msMin: Math.min(...samples),
        msPerImage: med / batch,
        imagesPerSec: (1000 * batch) / med,
        gflops,
        pctPeak: peak === null ? null : (100 * gflops) / peak,
      });
      if (ref?.out !== undefined && l.out !== undefined) {
        row.reference = ref.mode;
        Object.assign(row, compareOutputs(l.out, ref.out, batch));
      }
    }
    const ld = loads.get(`${l.mode}/${batch}`);
    if (ld !== undefined) {
      if (ld.error !== undefined) row.loadError = ld.error;
      else {
        if (ld.loadMs !== undefined) row.loadMs = ld.loadMs;
        if (ld.firstRunMs !== undefined) row.firstRunMs = ld.firstRunMs;
        row.peakRssMB = ld.maxRssKB / 1024;
        const rt = l.mode === 'ort' ? 'ort' : 'pif';
        const base = report.baselines.find((b) => b.batch === batch && b.runtime === rt);
        if (base !== undefined) row.modelRssMB = (ld.maxRssKB - base.maxRssKB) / 1024;
      }
    }
    return row;
  });
}

/** The speed-up of each pair that ran: median over rounds of the paired ratio. */
function ratiosFor(cell: Cell, live: readonly Live[], rounds: number): BenchRatio[] {
  const ratios: BenchRatio[] = [];
  for (const [a, b] of PAIRS) {
    const la = live.find((l) => l.mode === a && l.failed === undefined);
    const lb = live.find((l) => l.mode === b && l.failed === undefined);
    if (la === undefined || lb === undefined) continue;
    const per: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const ta = la.times[r];
      const tb = lb.times[r];
      if (ta !== undefined && tb !== undefined && ta > 0) per.push(tb / ta);
    }
    if (per.length > 0) {
      ratios.push({
        model: cell.key,
        threads: cell.threads,
        batch: cell.batch,
        pair: `${a}/${b}`,
        speedup: median(per),
        rounds: per.length,
      });
    }
  }
  return ratios;
}

/** Runs the whole benchmark; prints tables (or JSON) and writes opts.out. */
export async function runBench(opts: BenchOptions, io: BenchIo): Promise<BenchReport> {
  const log = (s: string) => {
    io.stderr(`[bench] ${s}\n`);
  };
  const machine = await machineInfo();
  log(
    `${String(machine['cpuModel'])}, ${String(machine['logicalCpus'])} CPUs, node ${process.version}`,
  );
  const { probes, probeError } = probePeaks(opts, log);
  const peakFor = (t: number) => probes.find((p) => p.threads === t)?.fmaGflops ?? null;

  const report: BenchReport = {
    machine,
    options: withoutJson(opts),
    models: Object.fromEntries(opts.models.map((k) => [k, { ...BENCH_MODELS[k] }])),
    probes,
    ...(probeError === undefined ? {} : { probeError }),
    baselines: [],
    rows: [],
    ratios: [],
  };

  const loadThreads = opts.threads[0] ?? 1;
  if (!opts.skipLoad) await runBaselines(opts, report, loadThreads, log);

  for (const key of opts.models) {
    const { name } = BENCH_MODELS[key];
    const art = await prepareModel(key, opts, log);
    const loads = opts.skipLoad
      ? new Map<string, ChildResult>()
      : await measureLoads(opts, name, art, loadThreads, log);

    for (const threads of opts.threads) {
      log(`${name}, ${threads} thread(s): loading ${opts.modes.join(', ')}`);
      const live = await openLive(opts, art, threads);
      try {
        for (const batch of opts.batches) {
          const rounds = await timeBatch(live, batch, opts, log);
          const cell = { key, threads, batch, peak: peakFor(threads) };
          report.rows.push(...rowsFor(cell, live, loads, report));
          report.ratios.push(...ratiosFor(cell, live, rounds));
        }
      } finally {
        for (const l of live) await l.runner.close();
      }
      if (!opts.json)
        io.stdout(formatSection(report, key, threads, peakFor(threads), probes, loadThreads));
    }
  }

  const out = path.resolve(opts.out);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  if (opts.json) io.stdout(`${JSON.stringify(report, null, 2)}\n`);
  else io.stdout(`JSON report: ${out}\n`);
  log(`wrote ${out}`);
  return report;
}
