/**
 * Starts a worker_thread running a TypeScript file. On Node 20 a worker does not inherit the
 * parent's `--import tsx` loader (its entry fails with ERR_UNKNOWN_FILE_EXTENSION), so the
 * worker starts from a small CommonJS bootstrap that registers tsx's ESM hooks in the worker
 * and then imports the entry.
 */
import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOT = `
const { workerData } = require('node:worker_threads');
import(workerData.tsxApi).then(({ register }) => {
  register();
  return import(workerData.entry);
}).catch((err) => { process.nextTick(() => { throw err; }); });`;

/** A Worker running `entry` (a file: URL of a .ts module) with `data` as its workerData. */
export function tsWorker(entry: URL, data: object, options: WorkerOptions = {}): Worker {
  const workerData = { ...data, tsxApi: import.meta.resolve('tsx/esm/api'), entry: entry.href };
  return new Worker(BOOT, { ...options, eval: true, workerData });
}
