/**
 * Crash-safe file writes. A file written here is either the old content or the complete new
 * content, never a torn mix: the bytes go to a temp file in the same directory, are fsynced,
 * renamed over the target, and the directory entry is fsynced too.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

import { PifIoError } from './errors.js';

/** fsync a directory so a rename inside it survives a crash (best effort where unsupported). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic there.
  } finally {
    await fh?.close();
  }
}

/** A temp path beside `file` (same directory, so the final rename is atomic). */
export function tempPathFor(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
}

/** Writes `data` to `file` atomically and durably; creates the parent directory. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(file);
  try {
    await mkdir(path.dirname(file), { recursive: true });
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await fsyncDir(path.dirname(file));
  } catch (err) {
    await rm(tmp, { force: true });
    throw new PifIoError(`cannot write ${file}: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
}
