/**
 * `paddle-image-feature serve`: the HTTP service (lib/serve/server.ts) from the command line. Runs until
 * SIGTERM or SIGINT, then shuts down gracefully (running requests finish) and exits 0.
 */
import { availableParallelism } from 'node:os';

import { Option, type Command } from 'commander';

import { createModel } from '../image-feature.js';
import {
  DEFAULT_BODY_LIMIT,
  DEFAULT_MAX_PIXELS,
  startServer,
  type RunningServer,
} from '../serve/server.js';
import { engineNote } from '../hpi-config.js';
import {
  HPI_OPTION_HELP,
  hpiBackendOption,
  hpiModelOptions,
  intArg,
  MODEL_OPTION_HELP,
  modelNameFor,
  numberArg,
} from './args.js';
import type { CliContext, CliIo } from './context.js';

/** One inference job runs at a time (the batcher), so it gets the cores; PaddleX's default is 8. */
export const DEFAULT_SERVE_THREADS = Math.min(availableParallelism(), 8);

interface ServeOptions {
  host: string;
  port: number;
  indexDir: string;
  model?: string;
  modelDir?: string;
  hpi: boolean;
  hpiBackend?: string;
  maxBatch: number;
  maxWaitMs: number;
  threads: number;
  bodyLimit: number;
  maxPixels: number;
  visualize: boolean;
  quiet: boolean;
}

/** Adds `serve` to the program. */
export function registerServe(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description(
      'HTTP service: PaddleX PP-ShiTuV2 endpoints and /image-feature, with dynamic batching',
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0: any free port)', intArg(0, 65535), 8080)
    .option('--index-dir <dir>', 'where indexes persist (one directory per indexKey)', '.index')
    .option('--model <name>', MODEL_OPTION_HELP)
    .option('--model-dir <dir>', 'an exported inference model directory')
    .option('--hpi', HPI_OPTION_HELP, false)
    .addOption(hpiBackendOption())
    .option(
      '--max-batch <n>',
      'dynamic batching: most images per inference call (1: off)',
      intArg(1, 4096),
      8,
    )
    .option(
      '--max-wait-ms <ms>',
      'dynamic batching: longest wait for a batch to fill',
      numberArg(0, 60_000),
      5,
    )
    .addOption(
      new Option(
        '--threads <n>',
        'CPU threads per inference call (with batching one call runs at a time, so it may use every core)',
      )
        .argParser(intArg(1, 256))
        .default(DEFAULT_SERVE_THREADS, 'the CPU count, at most 8'),
    )
    .option(
      '--body-limit <MB>',
      'largest request body, MiB',
      numberArg(0.001, 1_000_000),
      DEFAULT_BODY_LIMIT / 2 ** 20,
    )
    .option('--max-pixels <n>', 'most pixels of one image', intArg(1, 2 ** 40), DEFAULT_MAX_PIXELS)
    .option(
      '--no-visualize',
      '/shitu-infer: no visualisation image unless a request asks (visualize: true)',
    )
    .option('--quiet', 'no per-request log lines', false)
    .action(async (o: ServeOptions) => {
      await serve(o, ctx.io);
    });
}

/** Serves until SIGTERM or SIGINT, then finishes the running requests. */
async function serve(o: ServeOptions, io: CliIo): Promise<void> {
  const model = await createModel(await modelNameFor(o.model, o.modelDir), {
    ...(o.modelDir === undefined ? {} : { modelDir: o.modelDir }),
    cpuThreads: o.threads,
    ...hpiModelOptions(o),
  });
  if (!o.quiet && model.runMode === 'hpi') io.stderr(`${engineNote(model.engine)}\n`);
  let running: RunningServer;
  try {
    running = await startServer({
      model,
      host: o.host,
      port: o.port,
      indexDir: o.indexDir,
      maxBatch: o.maxBatch,
      maxWaitMs: o.maxWaitMs,
      bodyLimitBytes: Math.round(o.bodyLimit * 2 ** 20),
      maxPixels: o.maxPixels,
      visualize: o.visualize,
      closeModel: true,
      ...(o.quiet
        ? {}
        : {
            log: (line: string) => {
              io.stderr(`${new Date().toISOString()} ${line}\n`);
            },
          }),
    });
  } catch (err) {
    model.close();
    throw err;
  }
  io.stdout(
    `serving ${model.modelName} on ${running.url} (indexes in ${o.indexDir}; batching: up to ${o.maxBatch} images, ${o.maxWaitMs} ms)\n`,
  );
  const server = running;
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      io.stderr(
        `${signal}: finishing running requests, then exiting (${signal} again to stop now)\n`,
      );
      server.close().then(resolve, (err: unknown) => {
        io.stderr(`shutdown: ${err instanceof Error ? err.message : String(err)}\n`);
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  io.stderr('stopped\n');
}
