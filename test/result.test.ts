// FeatureResult and the Python-compatible JSON writer (lib/result.ts, lib/pyjson.ts), checked
// byte for byte against Python's own json module (the oracle: PaddleX writes its result files
// with json.dump of float32 values widened to double).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { FeatureResult } from '../lib/result.js';
import { pyFloatRepr, pyJsonDumps } from '../lib/pyjson.js';

const PY = process.env['PIF_PYTHON'] ?? 'python3';

/** Runs a Python snippet with `input` on stdin; returns stdout. */
function python(code: string, input: string): string {
  return execFileSync(PY, ['-c', code], { input, maxBuffer: 256 * 2 ** 20, encoding: 'utf8' });
}

function hexOf(x: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b.toString('hex');
}

// Python reads doubles as little-endian hex, so no number parsing is involved on its side.
const PY_DUMPS = `
import json, struct, sys
req = json.loads(sys.stdin.read())
vals = [struct.unpack('<d', bytes.fromhex(h))[0] for h in req['hex']]
out = []
for indent, ascii in req['modes']:
    out.append(json.dumps(vals, indent=indent, ensure_ascii=ascii))
sys.stdout.write(json.dumps(out))
`;

/** Deterministic pseudo-random numbers (xorshift32). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function testValues(): number[] {
  const v: number[] = [
    0,
    -0,
    1,
    -1,
    0.5,
    0.1,
    100,
    1e-4,
    1e-5,
    9.999e-5,
    0.00015,
    1.5e-5,
    1e-7,
    1e15,
    1e16,
    9999999999999998,
    1.5e16,
    123456789012345680,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    Math.fround(0.04910231),
    -0.07126085,
    1 / 3,
    2 / 3,
    1e21,
    1e22,
    1e100,
    -1e-300,
    12345.678,
    NaN,
    Infinity,
    -Infinity,
  ];
  const next = rng(20261127);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  // float32 bit patterns over every exponent (incl. subnormals), widened to double.
  while (v.length < 20000) {
    u32[0] = next();
    const x = f32[0] as number;
    if (Number.isFinite(x)) v.push(x);
  }
  // Unit-norm-like feature values, the common case.
  for (let i = 0; i < 4000; i++) v.push(Math.fround(((next() / 2 ** 32) * 2 - 1) * 0.2));
  // Arbitrary doubles.
  const f64 = new Float64Array(1);
  const w = new Uint32Array(f64.buffer);
  for (let i = 0; i < 4000; i++) {
    w[0] = next();
    w[1] = next();
    if (Number.isFinite(f64[0])) v.push(f64[0] as number);
  }
  return v;
}

describe('Python-compatible JSON (oracle: python3 json)', () => {
  test('every number prints as Python prints it, in every layout', () => {
    const vals = testValues();
    const modes: [number | null, boolean][] = [
      [null, true],
      [4, false],
      [2, true],
    ];
    const out = JSON.parse(
      python(PY_DUMPS, JSON.stringify({ hex: vals.map(hexOf), modes })),
    ) as string[];
    modes.forEach(([indent, ascii], k) => {
      const ours = pyJsonDumps(vals, { indent, ensureAscii: ascii });
      if (ours !== out[k]) {
        // Name the first differing value, not just the position.
        const theirs = (out[k] as string).split(indent === null ? ', ' : ',');
        const mine = ours.split(indent === null ? ', ' : ',');
        const i = mine.findIndex((s, j) => s !== theirs[j]);
        assert.fail(
          `mode ${String(indent)}/${String(ascii)}: item ${i}: ${mine[i]} vs ${theirs[i]}`,
        );
      }
    });
    // Spot checks of the layout rules, independent of the oracle.
    assert.equal(pyFloatRepr(1.5e-5), '1.5e-05');
    assert.equal(pyFloatRepr(1e16), '1e+16');
    assert.equal(pyFloatRepr(1e15), '1000000000000000.0');
    assert.equal(pyFloatRepr(-0), '-0.0');
    assert.equal(pyFloatRepr(0.0001), '0.0001');
  });

  test('strings: quotes, controls and non-ASCII with ensure_ascii on and off', () => {
    const strs = [
      'plain.jpg',
      'données/猫 "q" \\ back\\slash.jpg',
      'tab\tnew\nline\r\b\f\u0001\u001f\u007f',
      'emoji 😀 and \u2028',
    ];
    const code = `
import json, sys
strs = json.loads(sys.stdin.read())
sys.stdout.write(json.dumps([json.dumps(strs, ensure_ascii=True), json.dumps({s: s for s in strs}, indent=4, ensure_ascii=False)]))
`;
    const [a, b] = JSON.parse(python(code, JSON.stringify(strs))) as [string, string];
    assert.equal(pyJsonDumps(strs, { indent: null, ensureAscii: true }), a);
    const obj: Record<string, string> = {};
    for (const s of strs) obj[s] = s;
    assert.equal(pyJsonDumps(obj, { indent: 4, ensureAscii: false }), b);
  });
});

describe('FeatureResult', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pif-result-'));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const next = rng(7);
  const feature = new Float32Array(512);
  let norm = 0;
  for (let i = 0; i < feature.length; i++) {
    feature[i] = (next() / 2 ** 32) * 2 - 1;
    norm += (feature[i] as number) ** 2;
  }
  for (let i = 0; i < feature.length; i++) feature[i] = (feature[i] as number) / Math.sqrt(norm);

  test('saveToJson writes the bytes Python json.dump writes (PaddleX save_to_json)', async () => {
    const input = path.join(dir, 'photos', 'données 猫.jpg');
    const r = new FeatureResult(input, null, feature);
    for (const ensureAscii of [false, true]) {
      const out = await r.saveToJson(path.join(dir, `out-${String(ensureAscii)}`), { ensureAscii });
      assert.equal(out, path.join(dir, `out-${String(ensureAscii)}`, 'données 猫_res.json'));
      const code = `
import json, struct, sys
req = json.loads(sys.stdin.read())
feat = [struct.unpack('<f', bytes.fromhex(h))[0] for h in req['f32']]
obj = {"input_path": req['path'], "page_index": None, "feature": feat}
sys.stdout.buffer.write(json.dumps(obj, indent=4, ensure_ascii=req['ascii']).encode('utf-8'))
`;
      const f32 = Array.from(new Uint8Array(feature.buffer))
        .map((b) => b.toString(16).padStart(2, '0'))
        .join('')
        .match(/.{8}/g) as string[];
      const want = execFileSync(PY, ['-c', code], {
        input: JSON.stringify({ f32, path: input, ascii: ensureAscii }),
      });
      assert.ok(
        readFileSync(out).equals(want),
        `bytes differ (ensureAscii ${String(ensureAscii)})`,
      );
    }
    // The JSON view round-trips the float32 values exactly.
    const back = JSON.parse(
      readFileSync(path.join(dir, 'out-false', 'données 猫_res.json'), 'utf8'),
    ) as { feature: number[] };
    assert.deepEqual(Float32Array.from(back.feature), feature);
    assert.deepEqual(Object.keys(back), ['input_path', 'page_index', 'feature']);
  });

  test('file naming: .json paths, pages, inputs without a path; no temporary files left', async () => {
    const r = new FeatureResult('/x/y/img.v2.PNG', null, feature);
    assert.equal(await r.saveToJson(path.join(dir, 'a', 'b.json')), path.join(dir, 'a', 'b.json'));
    assert.equal(await r.saveToJson(path.join(dir, 'a', 'C.JSON')), path.join(dir, 'a', 'C.JSON'));
    assert.equal(await r.saveToJson(path.join(dir, 'n')), path.join(dir, 'n', 'img.v2_res.json'));
    const page = new FeatureResult('/docs/scan.pdf', 2, feature);
    assert.equal(
      await page.saveToJson(path.join(dir, 'p')),
      path.join(dir, 'p', 'scan_2_res.json'),
    );
    const raw = new FeatureResult(null, null, feature);
    const f = await raw.saveToJson(path.join(dir, 'raw'));
    assert.match(path.basename(f), /^\d{10}_\d{4}_res\.json$/);
    const inner = JSON.parse(readFileSync(f, 'utf8')) as { input_path: unknown };
    assert.equal(inner.input_path, null);
    for (const d of ['a', 'n', 'p', 'raw']) {
      assert.ok(
        readdirSync(path.join(dir, d)).every((n) => n.endsWith('.json') || n.endsWith('.JSON')),
      );
    }
    // A path that cannot be written gives a typed error naming the file.
    await assert.rejects(
      r.saveToJson('/proc/no-such-dir/x.json'),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PIF_IO');
        assert.match(err.message, /x\.json/);
        return true;
      },
    );
  });

  test('json view, repr and print', () => {
    const r = new FeatureResult('general_image_recognition_001.jpg', null, feature);
    const j = r.json;
    assert.deepEqual(Object.keys(j.res), ['input_path', 'page_index', 'feature']);
    assert.equal(j.res.feature.length, 512);
    assert.equal(j.res.feature[3], feature[3]);
    assert.equal(r.toJsonString({ indent: null }).slice(0, 8), '{"res": ');
    const repr = r.toString();
    assert.match(
      repr,
      /^\{'res': \{'input_path': 'general_image_recognition_001\.jpg', 'page_index': None, 'feature': array\(\[ ?-?[0-9.e-]+, \.\.\., ?-?[0-9.e-]+\], dtype=float32\)\}\}$/,
    );
    const logged: string[] = [];
    const orig = console.log;
    console.log = (s: string) => logged.push(s);
    try {
      r.print({ jsonFormat: true, indent: 2 });
      r.print();
    } finally {
      console.log = orig;
    }
    assert.equal(logged[0], r.toJsonString({ indent: 2 }));
    assert.equal(logged[1], repr);
    assert.throws(() => {
      r.print({ jsonFormat: 'yes' as unknown as boolean });
    }, /jsonFormat/);
    assert.throws(() => r.toJsonString({ indent: -1 }), /indent/);
    assert.throws(
      () => new FeatureResult('a', null, [1] as unknown as Float32Array),
      /Float32Array/,
    );
  });
});
