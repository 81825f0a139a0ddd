/** Shared by the tests of the repository check scripts (scripts/check-*.mjs). */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs scripts/<name> on ROOT (default: this checkout); its exit status and output. */
export function runCheckScript(name: string, root?: string) {
  const script = path.join(repo, 'scripts', name);
  const args = root === undefined ? [script] : [script, root];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Writes TEXT to ROOT/REL, creating folders. */
export function put(root: string, rel: string, text: string): void {
  mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  writeFileSync(path.join(root, rel), text);
}
