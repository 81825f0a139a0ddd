/** `paddle-image-feature split`: re-split a dataset's lists by percents, seeded. */
import type { Command } from 'commander';

import { intArg, numberArg } from './args.js';
import type { CliContext } from './context.js';

/** Adds `split` to the program. */
export function registerSplit(program: Command, ctx: CliContext): void {
  program
    .command('split')
    .description(
      're-split all list lines into train/gallery/query by percents (seeded, reproducible)',
    )
    .argument('<dataset_dir>', 'the dataset root (with train.txt / gallery.txt / query.txt)')
    .requiredOption('--train <percent>', 'train percent', numberArg())
    .requiredOption('--gallery <percent>', 'gallery percent', numberArg())
    .requiredOption('--query <percent>', 'query percent', numberArg())
    .option('--seed <n>', 'shuffle seed', intArg(0), 123)
    .action(
      async (dir: string, o: { train: number; gallery: number; query: number; seed: number }) => {
        const { splitDataset } = await import('../dataset/split.js');
        const r = await splitDataset(dir, {
          trainPercent: o.train,
          galleryPercent: o.gallery,
          queryPercent: o.query,
          seed: o.seed,
        });
        ctx.io.stdout(
          `split ${r.root} (seed ${o.seed}): train ${r.counts.train}, gallery ${r.counts.gallery}, query ${r.counts.query}` +
            `${r.backups.length > 0 ? `; backups: ${r.backups.join(', ')}` : ''}\n`,
        );
      },
    );
}
