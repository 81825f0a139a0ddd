/**
 * Load test of the HTTP service's `/image-feature` on loopback, dynamic batching on vs off.
 *
 *   npm run loadtest:serve -- [--duration 20] [--connections 32] [--modes on,off]
 *                             [--max-batch 8] [--max-wait-ms 5] [--threads N (default: the serve default, CPU count up to 8)] [--no-hpi]
 *                             [--requests 10000] [--json FILE]
 *
 * The server runs as a child process (`serve` from lib/cli/serve.ts) with a builder model
 * (PP-ShiTuV2_rec, seeded random weights, high-performance mode unless --no-hpi), so its RSS is
 * its own (sampled from /proc every 500 ms). autocannon drives it with `--connections`
 * concurrent clients, each POSTing one 320x240 JPEG as Base64, for `--duration` seconds per mode
 * (or `--requests` requests in all, to watch RSS over a long run). Every run stops by itself.
 *
 * Prints a table and one JSON line: throughput (req/s), p50/p99 latency, errors (non-2xx,
 * timeouts and socket errors: must be 0; the exit status is 1 otherwise), native inference calls
 * and the mean batch, server RSS after warm-up, at the end and at its peak, plus RSS and JS heap
 * over the run (for `--requests`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import sharp from 'sharp';

import { buildModel } from '../lib/builder.js';
import { DEFAULT_SERVE_THREADS } from '../lib/cli/serve.js';

/** The part of autocannon's API used here (it ships no types). */
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number; max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
}
type Autocannon = (opts: {
  url: string;
  connections: number;
  duration?: number;
  amount?: number;
  method: string;
  headers: Record<string, string>;
  body: string;
  timeout?: number;
}) => Promise<AutocannonResult>;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '20' },
    connections: { type: 'string', default: '32' },
    modes: { type: 'string', default: 'on,off' },
    'max-batch': { type: 'string', default: '8' },
    'max-wait-ms': { type: 'string', default: '5' },
    threads: { type: 'string', default: String(DEFAULT_SERVE_THREADS) },
    'no-hpi': { type: 'boolean', default: false },
    requests: { type: 'string' },
    json: { type: 'string' },
  },
});

const num = (v: string | undefined, what: string, min: number): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${what} must be a number >= ${min}`);
  return n;
};
const duration = num(values.duration, 'duration', 1);
const connections = num(values.connections, 'connections', 1);
const maxBatch = num(values['max-batch'], 'max-batch', 2);
const maxWaitMs = num(values['max-wait-ms'], 'max-wait-ms', 0);
const threads = num(values.threads, 'threads', 1);
const requests = values.requests === undefined ? null : num(values.requests, 'requests', 1);
const hpi = !values['no-hpi'];
const modes = values.modes.split(',').map((m) => {
  if (m !== 'on' && m !== 'off') throw new Error(`--modes: 'on' and/or 'off', got '${m}'`);
  return m;
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Resident set size of a process, MiB (Linux). */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

interface Server {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
}

async function startServer(modelDir: string, indexDir: string, batch: number): Promise<Server> {
  const args = [
    '--import',
    'tsx',
    path.join(root, 'test', 'helpers', 'serve-child.ts'),
    'serve',
    '--port',
    '0',
    '--model-dir',
    modelDir,
    '--index-dir',
    indexDir,
    '--max-batch',
    String(batch),
    '--max-wait-ms',
    String(maxWaitMs),
    '--threads',
    String(threads),
    '--quiet',
    ...(hpi ? ['--hpi-backend', 'paddle_mkldnn'] : []),
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) =>
    child.on('exit', (code) => {
      r(code);
    }),
  );
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /on (http:\/\/\S+) /.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    void exited.then((code) => {
      reject(new Error(`the server exited early (status ${code})`));
    });
  });
  return { child, url, exited };
}

interface Health {
  batches: number;
  items: number;
  heapUsedMiB: number;
}

async function health(url: string): Promise<Health> {
  const res = (await (await fetch(`${url}/health`)).json()) as {
    result: {
      stats: { batcher: { batches: number; items: number }; memory: { heapUsed: number } };
    };
  };
  const { batcher, memory } = res.result.stats;
  return { ...batcher, heapUsedMiB: memory.heapUsed / 2 ** 20 };
}

interface Sample {
  s: number;
  requests: number;
  rssMiB: number;
  heapUsedMiB: number;
}

interface Row {
  mode: string;
  maxBatch: number;
  requests: number;
  seconds: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  nativeCalls: number;
  meanBatch: number;
  rssAfterWarmupMiB: number;
  rssEndMiB: number;
  rssPeakMiB: number;
  /** With --requests: RSS and JS heap over the run. */
  series?: Sample[];
}

async function run(mode: string, modelDir: string, tmp: string, body: string): Promise<Row> {
  const batch = mode === 'on' ? maxBatch : 1;
  const server = await startServer(modelDir, path.join(tmp, `index-${mode}`), batch);
  const pid = server.child.pid as number;
  const headers = { 'content-type': 'application/json' };
  try {
    // Warm-up: every connection once, so buffers and thread pools exist before measuring.
    await autocannon({
      url: `${server.url}/image-feature`,
      connections,
      amount: connections * 2,
      method: 'POST',
      headers,
      body,
    });
    const warm = await health(server.url);
    const rssWarm = rssMiB(pid);
    let peak = rssWarm;
    const series: Sample[] = [];
    const t0 = performance.now();
    let running = true;
    // Samples RSS (from /proc) and the server's own counts (from /health) every 500 ms.
    const sampler = (async () => {
      while (running) {
        await new Promise((r) => setTimeout(r, 500));
        const r = rssMiB(pid);
        peak = Math.max(peak, r);
        const h = await health(server.url).catch(() => null);
        if (h === null) continue;
        series.push({
          s: Number(((performance.now() - t0) / 1000).toFixed(1)),
          requests: h.items - warm.items,
          rssMiB: Number(r.toFixed(1)),
          heapUsedMiB: Number(h.heapUsedMiB.toFixed(1)),
        });
      }
    })();
    let result: AutocannonResult;
    try {
      result = await autocannon({
        url: `${server.url}/image-feature`,
        connections,
        ...(requests === null ? { duration } : { amount: requests }),
        method: 'POST',
        headers,
        body,
        timeout: 60,
      });
    } finally {
      running = false;
      await sampler;
    }
    const seconds = (performance.now() - t0) / 1000;
    const end = await health(server.url);
    const rssEnd = rssMiB(pid);
    peak = Math.max(peak, rssEnd);
    const calls = end.batches - warm.batches;
    const items = end.items - warm.items;
    const row: Row = {
      mode: `batching ${mode}`,
      maxBatch: batch,
      requests: result.requests.total,
      seconds: Number(seconds.toFixed(1)),
      reqPerSec: Number((result.requests.total / seconds).toFixed(2)),
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      errors: result.errors + result.timeouts + result.non2xx,
      nativeCalls: calls,
      meanBatch: Number((items / Math.max(1, calls)).toFixed(2)),
      rssAfterWarmupMiB: Number(rssWarm.toFixed(1)),
      rssEndMiB: Number(rssEnd.toFixed(1)),
      rssPeakMiB: Number(peak.toFixed(1)),
    };
    if (requests !== null) {
      const step = Math.max(1, Math.floor(series.length / 40));
      row.series = series.filter((_, i) => i % step === 0 || i === series.length - 1);
    }
    return row;
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
}

const tmp = await mkdtemp(path.join(tmpdir(), 'pif-loadtest-'));
try {
  const modelDir = path.join(tmp, 'model');
  await buildModel('PP-ShiTuV2_rec', modelDir, { seed: 1 });
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="240">
    <rect width="320" height="240" fill="#dfe8f0"/>
    <circle cx="110" cy="120" r="70" fill="#c03030"/>
    <rect x="180" y="40" width="100" height="160" rx="12" fill="#2050a0"/>
    <text x="20" y="225" font-family="DejaVu Sans" font-size="22" fill="#111">paddle 123</text>
  </svg>`;
  const jpeg = await sharp(Buffer.from(svg)).jpeg({ quality: 90 }).toBuffer();
  const body = JSON.stringify({ image: jpeg.toString('base64') });
  process.stderr.write(
    `loadtest: ${connections} connections, ${requests === null ? `${duration} s per mode` : `${requests} requests per mode`}, ` +
      `body ${body.length} bytes, hpi ${hpi}, threads ${threads}, maxBatch ${maxBatch}, maxWaitMs ${maxWaitMs}\n`,
  );
  const rows: Row[] = [];
  for (const mode of modes) {
    process.stderr.write(`running: batching ${mode}...\n`);
    rows.push(await run(mode, modelDir, tmp, body));
  }
  const table = rows.map((r) => ({
    mode: r.mode,
    'req/s': r.reqPerSec,
    'p50 ms': r.p50Ms,
    'p99 ms': r.p99Ms,
    errors: r.errors,
    requests: r.requests,
    'native calls': r.nativeCalls,
    'mean batch': r.meanBatch,
    'RSS warm MiB': r.rssAfterWarmupMiB,
    'RSS end MiB': r.rssEndMiB,
    'RSS peak MiB': r.rssPeakMiB,
  }));
  console.table(table);
  for (const r of rows) {
    if (r.series !== undefined) {
      console.log(`${r.mode}: memory over the run`);
      console.log('        s  requests  RSS MiB  heap MiB');
      for (const x of r.series) {
        console.log(
          `  ${x.s.toFixed(1).padStart(7)}  ${String(x.requests).padStart(8)}  ${x.rssMiB.toFixed(1).padStart(7)}  ${x.heapUsedMiB.toFixed(1).padStart(8)}`,
        );
      }
    }
  }
  const summary = {
    config: {
      connections,
      duration: requests === null ? duration : null,
      requests,
      hpi,
      threads,
      maxBatch,
      maxWaitMs,
      bodyBytes: body.length,
    },
    results: rows,
  };
  const line = JSON.stringify(summary);
  console.log(line);
  if (values.json !== undefined) writeFileSync(values.json, `${line}\n`);
  if (rows.some((r) => r.errors > 0)) process.exitCode = 1;
} finally {
  await rm(tmp, { recursive: true, force: true });
}
