/** The benchmark's report: its rows and ratios (the JSON file) and the text tables. */
import { BENCH_MODELS, type BenchMode, type BenchModelKey, type BenchOptions } from './options.js';
import type { PeakResult } from './runners.js';

export interface BenchRow {
  model: BenchModelKey;
  modelName: string;
  threads: number;
  batch: number;
  mode: BenchMode;
  /** 'ok', or 'n/a: <why>' when the mode could not load or run here. */
  status: string;
  rounds?: number;
  /** Per-round ms per batch, in round order. */
  samplesMs?: number[];
  msPerBatch?: number;
  msMin?: number;
  msPerImage?: number;
  imagesPerSec?: number;
  gflops?: number;
  /** Of the FMA peak for `threads`. */
  pctPeak?: number | null;
  /** Against `reference` (normal mode). */
  reference?: BenchMode;
  cosMean?: number;
  cosWorst?: number;
  maxAbsDiff?: number;
  loadMs?: number;
  firstRunMs?: number;
  peakRssMB?: number;
  /** peak RSS minus the baseline child's (imports only). */
  modelRssMB?: number;
  loadError?: string;
}

export interface BenchRatio {
  model: BenchModelKey;
  threads: number;
  batch: number;
  /** 'a/b': median over rounds of t_b / t_a (> 1: a is faster). */
  pair: string;
  speedup: number;
  rounds: number;
}

export interface BenchReport {
  machine: Record<string, unknown>;
  options: Omit<BenchOptions, 'json'>;
  models: Record<string, { name: string; gflopPerImage: number; source: string }>;
  probes: PeakResult[];
  probeError?: string;
  baselines: { batch: number; threads: number; runtime: 'pif' | 'ort'; maxRssKB: number }[];
  rows: BenchRow[];
  ratios: BenchRatio[];
}

export function withoutJson(opts: BenchOptions): Omit<BenchOptions, 'json'> {
  const copy: Partial<BenchOptions> = { ...opts };
  delete copy.json;
  return copy as Omit<BenchOptions, 'json'>;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? (s[(n - 1) / 2] ?? NaN) : ((s[n / 2 - 1] ?? 0) + (s[n / 2] ?? 0)) / 2;
}

export function ms(x: number): string {
  return x.toFixed(0);
}

// ---------------------------------------------------------------------------------------
// Text tables

export function mb(kb: number): string {
  return (kb / 1024).toFixed(0);
}

function fmt(x: number | null | undefined, digits: number): string {
  return x === undefined || x === null || Number.isNaN(x) ? '-' : x.toFixed(digits);
}

/** Aligned columns: the first `left` left-aligned, the rest right-aligned. */
function table(head: string[], body: string[][], left = 2): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < left ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** One section: rows = batch × mode for one model and thread count, then the speed-ups. */
export function formatSection(
  report: BenchReport,
  key: BenchModelKey,
  threads: number,
  peak: number | null,
  probes: readonly PeakResult[],
  loadThreads: number,
): string {
  const { name, gflopPerImage } = BENCH_MODELS[key];
  const rows = report.rows.filter((r) => r.model === key && r.threads === threads);
  const sgemm = probes.find((p) => p.threads === threads)?.sgemmGflops;
  const head = [
    'batch',
    'mode',
    'ms/batch',
    'ms/img',
    'img/s',
    'GFLOP/s',
    '%peak',
    'cos worst',
    'cos mean',
    'max|Δ|',
    'load ms',
    'RSS MB',
    'model MB',
  ];
  const notes: string[] = [];
  const body = rows.map((r) => {
    const load =
      r.loadError !== undefined
        ? ['-', '-', '-']
        : [fmt(r.loadMs, 0), fmt(r.peakRssMB, 0), fmt(r.modelRssMB, 0)];
    if (r.status !== 'ok') {
      notes.push(`batch ${r.batch} ${r.mode}: ${r.status.slice(0, 200)}`);
      return [String(r.batch), r.mode, 'n/a', '', '', '', '', '', '', '', ...load];
    }
    return [
      String(r.batch),
      r.mode,
      fmt(r.msPerBatch, 2),
      fmt(r.msPerImage, 2),
      fmt(r.imagesPerSec, 1),
      fmt(r.gflops, 1),
      fmt(r.pctPeak, 1),
      fmt(r.cosWorst, 6),
      fmt(r.cosMean, 6),
      r.maxAbsDiff === undefined ? '-' : r.maxAbsDiff === 0 ? '0' : r.maxAbsDiff.toExponential(2),
      ...load,
    ];
  });
  const ratios = report.ratios.filter((r) => r.model === key && r.threads === threads);
  const pairs = [...new Set(ratios.map((r) => r.pair))];
  const batches = [...new Set(rows.map((r) => r.batch))];
  const ratioTable =
    pairs.length === 0
      ? '(no speed-ups: fewer than two modes ran)'
      : table(
          ['speed-up', ...batches.map((b) => `batch ${b}`)],
          pairs.map((p) => [
            p,
            ...batches.map((b) => {
              const r = ratios.find((x) => x.pair === p && x.batch === b);
              return r === undefined ? '-' : `${r.speedup.toFixed(2)}x`;
            }),
          ]),
          1,
        );
  const title =
    `${name} (${key}), ${threads} thread(s), ${gflopPerImage} GFLOP/image; peak ` +
    (peak === null
      ? 'unknown (no probe)'
      : `${peak.toFixed(1)} GFLOP/s FMA, ${fmt(sgemm, 1)} GFLOP/s sgemm`);
  return [
    '',
    title,
    '='.repeat(title.length),
    table(head, body),
    ...notes.map((n) => `  ${n}`),
    `  times: median over rounds; cos/max|Δ| vs normal mode; load/RSS: child process, ${loadThreads} thread(s), file -> ready; model MB = RSS minus imports-only child`,
    '',
    ratioTable,
    '  a/b = median over rounds of t_b / t_a (> 1: a is faster)',
    '',
  ].join('\n');
}
