/** `paddle-image-feature convert`: a LabelMe dataset to a ShiTuRecDataset. */
import { Option, type Command } from 'commander';

import type { CliContext } from './context.js';

/** Adds `convert` to the program. */
export function registerConvert(program: Command, ctx: CliContext): void {
  program
    .command('convert')
    .description(
      'convert a LabelMe dataset to a ShiTuRecDataset (train/gallery/query.txt 50/30/20)',
    )
    .argument('<dataset_dir>', 'directory with label.txt, annotations/ and images/')
    .addOption(new Option('--type <type>', 'source format').choices(['LabelMe']).default('LabelMe'))
    .action(async (dir: string, o: { type: string }) => {
      const { convertLabelMe } = await import('../dataset/convert.js');
      const r = await convertLabelMe(dir, { srcDatasetType: o.type });
      ctx.io.stdout(
        `converted ${r.root}: train ${r.counts.train}, gallery ${r.counts.gallery}, query ${r.counts.query}` +
          `${r.backups.length > 0 ? `; backups: ${r.backups.join(', ')}` : ''}\n`,
      );
    });
}
