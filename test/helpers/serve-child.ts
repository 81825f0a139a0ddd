/**
 * The `serve` command alone, as a child process (test/serve.test.ts, scripts/loadtest-serve.ts):
 * only its own command is registered, output goes to this process's stdout and stderr.
 *
 *   node --import tsx test/helpers/serve-child.ts serve --port 0 --model-dir DIR ...
 */
import { Command } from 'commander';

import { cliContext } from '../../lib/cli/context.js';
import { registerServe } from '../../lib/cli/serve.js';

const program = new Command('paddle-image-feature').exitOverride();
registerServe(
  program,
  cliContext({
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
  }),
);
await program.parseAsync(process.argv.slice(2), { from: 'user' });
