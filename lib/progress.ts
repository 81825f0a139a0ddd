/**
 * Progress bars for long CLI work (feature extraction, conversion, dataset checks). A bar is
 * drawn on stderr only when stderr is a TTY; otherwise progress is silent, so piped output stays
 * machine-readable.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Sets the total (may grow once the work is known). */
  setTotal(total: number): void;
  /** Marks `done` items finished (absolute count); `detail` is shown after the bar. */
  update(done: number, detail?: string): void;
  /** Removes the bar. */
  stop(): void;
}

const SILENT: Progress = {
  setTotal: () => undefined,
  update: () => undefined,
  stop: () => undefined,
};

/** A bar labelled `label` on `stream` when it is a TTY (and `enabled`), else a silent no-op. */
export function createProgress(
  label: string,
  options: { stream?: NodeJS.WriteStream; enabled?: boolean } = {},
): Progress {
  const stream = options.stream ?? process.stderr;
  if (options.enabled === false || !stream.isTTY) return SILENT;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {value}/{total} {percentage}% | {duration_formatted} elapsed, eta {eta_formatted} {detail}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let total = 0;
  return {
    setTotal(t: number): void {
      if (started && t === total) return;
      total = t;
      if (!started) {
        bar.start(t, 0, { detail: '' });
        started = true;
      } else bar.setTotal(t);
    },
    update(done: number, detail?: string): void {
      if (!started) {
        bar.start(Math.max(total, done), 0, { detail: '' });
        started = true;
      }
      bar.update(done, { detail: detail ?? '' });
    },
    stop(): void {
      if (started) bar.stop();
    },
  };
}
