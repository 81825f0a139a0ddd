/** The summary tables some suites print after their runs (aligned `|` columns under a title). */

/** Prints `title`, the head, a rule and the body, columns padded to their widest cell. */
export function printTable(title: string, head: string[], body: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  console.log(
    [title, line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n'),
  );
}
