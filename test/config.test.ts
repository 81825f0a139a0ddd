/**
 * PaddleX module configs and `-o` overrides (spec §5.1, §5.2): table-driven value parsing
 * (checked against Python's own ast.literal_eval where python3 exists), key paths, list
 * indexing, new-field notices, the shipped YAML files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import {
  applyOverride,
  CONFIG_DIR,
  configGet,
  loadModuleConfig,
  parseOverrideValue,
  parsePyLiteral,
  type ConfigMap,
  type ConfigValue,
} from '../lib/config.js';
import { ConfigError } from '../lib/errors.js';
import { OFFICIAL_MODELS } from '../lib/image-feature.js';

const requireFixtures = process.env['PIF_REQUIRE_FIXTURES'] === '1';

function python3(): boolean {
  try {
    execFileSync('python3', ['-c', 'pass']);
    return true;
  } catch {
    return false;
  }
}

/** [override value text, expected parsed value] */
const OVERRIDE_CASES: [string, ConfigValue][] = [
  ['None', null],
  // Only the exact string: PaddleX maps any substring of "None" (N, o, on, one, '') to None.
  ['N', 'N'],
  ['o', 'o'],
  ['on', 'on'],
  ['one', 'one'],
  ['', ''],
  ['none', 'none'],
  ['TRUE', true],
  ['True', true],
  ['true', true],
  ['T', true],
  ['t', true],
  ['FALSE', false],
  ['False', false],
  ['false', false],
  ['F', false],
  ['f', false],
  ['0', 0],
  ['42', 42],
  ['-3', -3],
  ['+7', 7],
  ['1_000', 1000],
  ['0x1f', 31],
  ['0o17', 15],
  ['0b101', 5],
  ['007', '007'],
  ['0.01', 0.01],
  ['.5', 0.5],
  ['5.', 5],
  ['1e-3', 0.001],
  ['-2.5E2', -250],
  ['[1, 2, 3]', [1, 2, 3]],
  ['[0.1,"a", None, True]', [0.1, 'a', null, true]],
  ['(1, 2)', [1, 2]],
  ['[]', []],
  ['[[1], [2, [3]]]', [[1], [2, [3]]]],
  ["{'a': 1, 'b': [2]}", { a: 1, b: [2] }],
  ["'quoted'", 'quoted'],
  ['"dq"', 'dq'],
  ["'a' 'b'", 'ab'],
  ['gpu:0,1,2,3', 'gpu:0,1,2,3'],
  ['cpu', 'cpu'],
  ['./dataset/Inshop_examples', './dataset/Inshop_examples'],
  ['https://x.test/a.jpg?x=1&y=2', 'https://x.test/a.jpg?x=1&y=2'],
  ['PP-ShiTuV2_rec', 'PP-ShiTuV2_rec'],
  ['1,2', [1, 2]],
  ['a.jpg,b.jpg', 'a.jpg,b.jpg'],
  ['__import__("os")', '__import__("os")'],
  ['[1, 2', '[1, 2'],
  ['inf', 'inf'],
];

describe('-o value parsing', () => {
  test('table: each value parses as the spec says', () => {
    for (const [text, want] of OVERRIDE_CASES) {
      assert.deepEqual(parseOverrideValue(text), want, `value ${JSON.stringify(text)}`);
    }
  });

  test('literals agree with Python ast.literal_eval', (t) => {
    if (!python3()) {
      const why = 'python3 not found (install python3)';
      if (requireFixtures) assert.fail(why);
      t.skip(why);
      return;
    }
    const texts = OVERRIDE_CASES.map(([s]) => s).filter(
      (s) => !/^[TtFf]$|^(TRUE|true|FALSE|false)$/.test(s),
    );
    const script = `
import ast, json, sys
out = []
for s in json.load(sys.stdin):
    try:
        v = ast.literal_eval(s)
        if isinstance(v, tuple): v = list(v)
        out.append({"ok": True, "v": v})
    except Exception:
        out.append({"ok": False})
print(json.dumps(out))`;
    const py = JSON.parse(
      execFileSync('python3', ['-c', script], { input: JSON.stringify(texts) }).toString(),
    ) as { ok: boolean; v?: ConfigValue }[];
    texts.forEach((s, i) => {
      const mine = parsePyLiteral(s);
      const theirs = py[i]!;
      if (theirs.ok) assert.deepEqual(mine, theirs.v, `literal ${JSON.stringify(s)}`);
      else assert.equal(mine, undefined, `not a literal in Python: ${JSON.stringify(s)}`);
    });
  });
});

function baseConfig(): ConfigMap {
  return {
    Global: { mode: 'check_dataset', output: 'output' },
    Train: { lr: [0.1, 0.2], nested: [{ a: 1 }] },
  };
}

describe('-o key paths', () => {
  const cases: { opt: string; path: string; want: ConfigValue; notices?: string[] }[] = [
    { opt: 'Global.mode=evaluate', path: 'Global.mode', want: 'evaluate' },
    { opt: 'Global.output=None', path: 'Global.output', want: null },
    { opt: 'Train.lr.1=0.5', path: 'Train.lr', want: [0.1, 0.5] },
    { opt: 'Train.nested.0.a=7', path: 'Train.nested.0.a', want: 7 },
    {
      opt: 'Global.extra=1',
      path: 'Global.extra',
      want: 1,
      notices: ['A new field (extra) detected!'],
    },
    {
      opt: 'New.sub.key=x',
      path: 'New.sub.key',
      want: 'x',
      notices: [
        'A new series field (New) detected!',
        'A new series field (sub) detected!',
        'A new field (key) detected!',
      ],
    },
    {
      opt: 'Predict.input=a=b.jpg',
      path: 'Predict.input',
      want: 'a=b.jpg',
      notices: ['A new series field (Predict) detected!', 'A new field (input) detected!'],
    },
  ];
  for (const c of cases) {
    test(c.opt, () => {
      const cfg = baseConfig();
      const notices: string[] = [];
      applyOverride(cfg, c.opt, { warn: (m) => notices.push(m) });
      assert.deepEqual(configGet(cfg, c.path), c.want);
      assert.deepEqual(notices, c.notices ?? []);
    });
  }

  const bad: [string, RegExp][] = [
    ['Global.mode', /expected key\.path=value/],
    ['=x', /expected key\.path=value/],
    ['Global..mode=x', /empty key segment/],
    ['Train.lr.5=1', /index\(5\) out of range\(2\)/],
    ['Train.lr.x=1', /indexes a list/],
    ['Global.mode.deeper=1', /Global\.mode is "check_dataset", not a mapping/],
  ];
  for (const [opt, re] of bad) {
    test(`rejects ${opt}`, () => {
      const cfg = baseConfig();
      const before = JSON.stringify(cfg);
      assert.throws(
        () => {
          applyOverride(cfg, opt);
        },
        (e: unknown) => e instanceof ConfigError && e.code === 'PIF_CONFIG' && re.test(e.message),
      );
      if (!opt.startsWith('Global.mode.deeper')) assert.equal(JSON.stringify(cfg), before);
    });
  }
});

describe('module configs', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pif-config-'));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('one shipped YAML per official model, with every PaddleX key', async () => {
    const files = readdirSync(CONFIG_DIR).sort();
    assert.deepEqual(files, OFFICIAL_MODELS.map((m) => `${m}.yaml`).sort());
    const keys = [
      'Global.model',
      'Global.mode',
      'Global.dataset_dir',
      'Global.device',
      'Global.output',
      'CheckDataset.convert.enable',
      'CheckDataset.convert.src_dataset_type',
      'CheckDataset.split.enable',
      'CheckDataset.split.train_percent',
      'CheckDataset.split.gallery_percent',
      'CheckDataset.split.query_percent',
      'Train.num_classes',
      'Train.epochs_iters',
      'Train.batch_size',
      'Train.learning_rate',
      'Train.pretrain_weight_path',
      'Train.warmup_steps',
      'Train.resume_path',
      'Train.log_interval',
      'Train.eval_interval',
      'Train.save_interval',
      'Evaluate.weight_path',
      'Evaluate.log_interval',
      'Export.weight_path',
      'Predict.batch_size',
      'Predict.model_dir',
      'Predict.input',
      'Predict.kernel_option.run_mode',
    ];
    for (const m of OFFICIAL_MODELS) {
      const cfg = await loadModuleConfig(path.join(CONFIG_DIR, `${m}.yaml`));
      for (const k of keys) assert.notEqual(configGet(cfg, k), undefined, `${m}: ${k}`);
      assert.equal(configGet(cfg, 'Global.model'), m);
      assert.equal(configGet(cfg, 'Global.device'), 'cpu');
      assert.equal(configGet(cfg, 'CheckDataset.convert.enable'), false);
      assert.equal(configGet(cfg, 'CheckDataset.split.train_percent'), null);
      assert.equal(configGet(cfg, 'Train.num_classes'), 159);
      assert.equal(configGet(cfg, 'Predict.kernel_option.run_mode'), 'paddle');
    }
    const vitb = await loadModuleConfig(path.join(CONFIG_DIR, 'PP-ShiTuV2_rec_CLIP_vit_base.yaml'));
    assert.equal(configGet(vitb, 'Train.batch_size'), 32);
    assert.equal(configGet(vitb, 'Train.learning_rate'), 0.001);
    const shitu = await loadModuleConfig(path.join(CONFIG_DIR, 'PP-ShiTuV2_rec.yaml'));
    assert.equal(configGet(shitu, 'Train.batch_size'), 128);
    assert.equal(configGet(shitu, 'Train.learning_rate'), 0.01);
  });

  test('YAML string values are literal-evaluated as PaddleX does', async () => {
    const f = path.join(dir, 'c.yaml');
    writeFileSync(f, 'A:\n  s: "None"\n  n: "1e-3"\n  l: "[1, 2]"\n  p: "./x"\n  b: True\n');
    const cfg = await loadModuleConfig(f);
    assert.deepEqual(cfg, { A: { s: null, n: 0.001, l: [1, 2], p: './x', b: true } });
  });

  test('bad YAML names the file and line', async () => {
    const f = path.join(dir, 'bad.yaml');
    writeFileSync(f, 'A:\n  b: 1\n c: [\n');
    await assert.rejects(
      loadModuleConfig(f),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.file === f &&
        /line \d+/.test(e.where ?? '') &&
        e.message.includes(f),
    );
    const g = path.join(dir, 'list.yaml');
    writeFileSync(g, '- 1\n- 2\n');
    await assert.rejects(loadModuleConfig(g), /must be a YAML mapping/);
    await assert.rejects(loadModuleConfig(path.join(dir, 'missing.yaml')), ConfigError);
  });
});
