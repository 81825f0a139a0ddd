// A minimal ustar writer for tests (regular files, directories, and deliberately bad entries).
export interface TarEntry {
  name: string;
  data?: Buffer;
  /** '0' file (default), '5' directory, '2' symlink, '1' hard link. */
  type?: '0' | '5' | '2' | '1';
  linkname?: string;
}

function field(buf: Buffer, off: number, len: number, value: string): void {
  buf.write(value, off, len, 'utf8');
}

function octal(buf: Buffer, off: number, len: number, n: number): void {
  field(buf, off, len, `${n.toString(8).padStart(len - 1, '0')}\0`);
}

export function makeTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const h = Buffer.alloc(512);
    field(h, 0, 100, e.name);
    octal(h, 100, 8, e.type === '5' ? 0o755 : 0o644);
    octal(h, 108, 8, 0);
    octal(h, 116, 8, 0);
    octal(h, 124, 12, e.type === '5' || e.type === '2' || e.type === '1' ? 0 : data.length);
    octal(h, 136, 12, 0);
    h.fill(32, 148, 156);
    h.write(e.type ?? '0', 156, 1, 'latin1');
    if (e.linkname !== undefined) field(h, 157, 100, e.linkname);
    field(h, 257, 6, 'ustar\0');
    field(h, 263, 2, '00');
    let sum = 0;
    for (const b of h) sum += b;
    field(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    parts.push(h);
    if (e.type === undefined || e.type === '0') {
      parts.push(data, Buffer.alloc((512 - (data.length % 512)) % 512));
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
