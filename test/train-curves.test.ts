// train_curves.png (lib/train/curves.ts): the geometry of the three panels (nice ticks, mapped
// points, gaps at non-finite losses), the rendered PNG checked pixel by pixel against that
// geometry (line colours where the points are, white away from them), the edge cases (one
// epoch, flat series, NaN/Infinity loss, 500 epochs, no evaluation) and the refused inputs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import sharp from 'sharp';

import { InvalidArgumentError } from '../lib/errors.js';
import {
  buildTrainCurvesSvg,
  CURVE_COLORS,
  CURVE_EMPTY_MESSAGES,
  CURVE_TITLES,
  renderTrainCurvesPng,
  type CurvePanel,
  type CurvePoint,
  type CurveSeries,
  type EpochPoint,
  type TrainCurvesSvg,
} from '../lib/train/curves.js';

interface Raw {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

async function decode(png: Buffer): Promise<Raw> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

const rgbOf = (hex: string): number[] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

function pixel(img: Raw, x: number, y: number): number[] {
  const o = (Math.round(y) * img.width + Math.round(x)) * img.channels;
  return [img.data[o]!, img.data[o + 1]!, img.data[o + 2]!];
}

/** Whether a pixel within `radius` of (x, y) has colour `hex` (anti-aliasing tolerated). */
function colourNear(img: Raw, x: number, y: number, hex: string, radius = 3): boolean {
  const want = rgbOf(hex);
  for (let dy = -radius; dy <= radius; dy++) {
    for (let dx = -radius; dx <= radius; dx++) {
      const got = pixel(img, x + dx, y + dy);
      if (got.every((c, i) => Math.abs(c - want[i]!) <= 6)) return true;
    }
  }
  return false;
}

const isWhite = (p: number[]): boolean => p.every((c) => c === 255);

function distToSegment(px: number, py: number, a: CurvePoint, b: CurvePoint): number {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - a.x) * dx + (py - a.y) * dy) / len2));
  return Math.hypot(px - (a.x + t * dx), py - (a.y + t * dy));
}

function distToSeries(px: number, py: number, s: CurveSeries): number {
  let d = Infinity;
  for (const seg of s.segments) {
    seg.forEach((p, i) => {
      d = Math.min(d, Math.hypot(px - p.x, py - p.y));
      if (i > 0) d = Math.min(d, distToSegment(px, py, seg[i - 1]!, p));
    });
  }
  return d;
}

const panel = (geo: TrainCurvesSvg, key: CurvePanel['key']): CurvePanel =>
  geo.panels.find((p) => p.key === key)!;

const series = (geo: TrainCurvesSvg, name: CurveSeries['name']): CurveSeries =>
  geo.panels.flatMap((p) => p.series).find((s) => s.name === name)!;

/** 12 epochs of a decaying loss and a cosine learning rate, evaluated every third epoch. */
function knownRun(n = 12, evalEvery = 3): EpochPoint[] {
  return Array.from({ length: n }, (_, i) => {
    const epoch = i + 1;
    const p: EpochPoint = {
      epoch,
      loss: 2 * Math.exp(-epoch / 4) + 0.1,
      lr: 0.02 * (1 + Math.cos((Math.PI * i) / n)),
    };
    if (epoch % evalEvery === 0) {
      p.recall1 = 0.9 - 0.5 * Math.exp(-epoch / 4);
      p.mAP = 0.6 - 0.5 * Math.exp(-epoch / 4);
    }
    return p;
  });
}

async function assertValidPng(png: Buffer): Promise<Raw> {
  const meta = await sharp(png).metadata();
  assert.equal(meta.format, 'png');
  assert.deepEqual([meta.width, meta.height], [1920, 1440]);
  assert.equal(meta.hasAlpha, false, 'opaque');
  assert.equal(meta.density, 300);
  return decode(png);
}

/** Every plot-area pixel of `p` on a sparse grid that is away from lines, grid and frame. */
function assertWhiteAwayFromLines(img: Raw, p: CurvePanel): number {
  let checked = 0;
  const { plot } = p;
  for (let y = plot.top + 8; y < plot.bottom - 8; y += 7) {
    if (p.yTicks.some((t) => Math.abs(t.pos - y) < 5)) continue;
    for (let x = plot.left + 8; x < plot.right - 8; x += 9) {
      if (p.series.some((s) => distToSeries(x, y, s) < 20)) continue;
      assert.ok(
        isWhite(pixel(img, x, y)),
        `${p.key}: (${x}, ${y}) is ${pixel(img, x, y).join(',')}`,
      );
      checked++;
    }
  }
  return checked;
}

describe('train curves', () => {
  test('a known run: size, opaque white background, titles, line colours at the points', async () => {
    const points = knownRun();
    const geo = buildTrainCurvesSvg(points);
    assert.deepEqual([geo.width, geo.height], [1920, 1440]);
    for (const title of Object.values(CURVE_TITLES)) assert.ok(geo.svg.includes(`>${title}<`));
    for (const label of ['Epoch', 'Loss', 'Learning rate', 'Score', 'Recall@1', 'mAP']) {
      assert.ok(geo.svg.includes(`>${label}<`), label);
    }
    assert.ok(!/NaN|Infinity|undefined/.test(geo.svg));
    assert.deepEqual(
      geo.panels.map((p) => p.key),
      ['loss', 'lr', 'eval'],
    );
    // Panels are stacked and share the epoch axis.
    for (let i = 1; i < geo.panels.length; i++) {
      assert.ok(geo.panels[i]!.plot.top > geo.panels[i - 1]!.plot.bottom + 60);
      assert.deepEqual(geo.panels[i]!.xTicks, geo.panels[0]!.xTicks);
    }
    assert.deepEqual(
      series(geo, 'loss').points.map((p) => p.epoch),
      points.map((p) => p.epoch),
    );
    assert.deepEqual(
      series(geo, 'recall1').points.map((p) => p.epoch),
      [3, 6, 9, 12],
    );
    assert.deepEqual(series(geo, 'mAP').segments.length, 1, 'one line across evaluated epochs');
    // Decreasing loss goes down the picture, x grows with the epoch.
    const loss = series(geo, 'loss').points;
    for (let i = 1; i < loss.length; i++) {
      assert.ok(loss[i]!.x > loss[i - 1]!.x && loss[i]!.y > loss[i - 1]!.y);
    }
    // Score axis is 0..1: a value's y is where the 0 and 1 ticks put it.
    const ev = panel(geo, 'eval');
    const y0 = ev.yTicks.find((t) => t.value === 0)!.pos;
    const y1 = ev.yTicks.find((t) => t.value === 1)!.pos;
    for (const p of series(geo, 'recall1').points) {
      assert.ok(Math.abs(p.y - (y0 + (y1 - y0) * p.value)) < 0.02);
    }

    const img = await assertValidPng(await renderTrainCurvesPng(points));
    for (const s of geo.panels.flatMap((p) => p.series)) {
      for (const p of s.points) {
        assert.ok(colourNear(img, p.x, p.y, s.color), `${s.name} marker at epoch ${p.epoch}`);
      }
      for (const seg of s.segments) {
        for (let i = 1; i < seg.length; i++) {
          const [a, b] = [seg[i - 1]!, seg[i]!];
          const [mx, my] = [(a.x + b.x) / 2, (a.y + b.y) / 2];
          assert.ok(colourNear(img, mx, my, s.color), `${s.name} line ${a.epoch}-${b.epoch}`);
        }
      }
    }
    for (const p of geo.panels) assert.ok(assertWhiteAwayFromLines(img, p) > 1000, p.key);
    // The right margin, beside every panel, is untouched.
    for (let y = 0; y < img.height; y += 3) {
      for (let x = 1895; x < img.width; x++) assert.ok(isWhite(pixel(img, x, y)), `(${x}, ${y})`);
    }
    // The frame is drawn in black.
    const lp = panel(geo, 'loss').plot;
    assert.deepEqual(pixel(img, (lp.left + lp.right) / 2, lp.bottom), [0, 0, 0]);
  });

  test('value ticks are nice (1, 2 or 5 times a power of ten), cover the data and stay few', () => {
    const ranges: [number, number][] = [
      [0.1, 2.1],
      [3, 3.7],
      [1e-6, 4e-4],
      [0, 0.04],
      [-1.5, 2],
      [1234, 98765],
      [2e5, 9e6],
    ];
    for (const [lo, hi] of ranges) {
      const points: EpochPoint[] = [
        { epoch: 1, loss: hi, lr: lo },
        { epoch: 2, loss: lo, lr: hi },
      ];
      const geo = buildTrainCurvesSvg(points);
      for (const key of ['loss', 'lr'] as const) {
        const { yTicks, yDomain, plot } = panel(geo, key);
        assert.ok(yTicks.length >= 3 && yTicks.length <= 7, `${lo}..${hi}: ${yTicks.length}`);
        const step = yTicks[1]!.value - yTicks[0]!.value;
        const mant = step / 10 ** Math.floor(Math.log10(step));
        assert.ok(
          [1, 2, 5].some((m) => Math.abs(mant - m) < 1e-6),
          `step ${step}`,
        );
        yTicks.forEach((t, i) => {
          assert.ok(Math.abs(t.value - (yTicks[0]!.value + i * step)) < step * 1e-6);
          assert.ok(t.pos >= plot.top && t.pos <= plot.bottom);
          assert.ok(!t.label.includes('NaN') && t.label.length <= 8, t.label);
        });
        assert.equal(new Set(yTicks.map((t) => t.label)).size, yTicks.length, 'distinct labels');
        assert.ok(yDomain[0] <= lo && yDomain[1] >= hi);
      }
    }
    // Labels as a person writes them.
    const geo = buildTrainCurvesSvg([
      { epoch: 1, loss: 0.1, lr: 1e-5 },
      { epoch: 2, loss: 0.3, lr: 5e-5 },
    ]);
    assert.ok(panel(geo, 'loss').yTicks.some((t) => t.label === '0.30'));
    assert.ok(panel(geo, 'lr').yTicks.some((t) => t.label === '5e-5'));
    assert.deepEqual(
      panel(geo, 'eval').yTicks.map((t) => t.label),
      ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0'],
    );
    assert.deepEqual(
      panel(geo, 'loss').xTicks.map((t) => t.label),
      ['1', '2'],
    );
  });

  test('one epoch: centred, no division by zero, one epoch tick', async () => {
    const points: EpochPoint[] = [{ epoch: 1, loss: 0.5, lr: 1e-3, recall1: 0.4, mAP: 0.25 }];
    const geo = buildTrainCurvesSvg(points);
    assert.ok(!/NaN|Infinity/.test(geo.svg));
    const p = panel(geo, 'loss');
    assert.deepEqual(
      p.xTicks.map((t) => t.value),
      [1],
    );
    const pt = series(geo, 'loss').points[0]!;
    assert.ok(Math.abs(pt.x - (p.plot.left + p.plot.right) / 2) <= 1);
    assert.ok(Math.abs(pt.y - (p.plot.top + p.plot.bottom) / 2) <= 2, 'a flat range centres it');
    const img = await assertValidPng(await renderTrainCurvesPng(points));
    for (const s of geo.panels.flatMap((q) => q.series)) {
      assert.ok(colourNear(img, s.points[0]!.x, s.points[0]!.y, s.color), s.name);
    }
  });

  test('constant values: a flat line inside a real range, also at 0', async () => {
    const points = [1, 2, 3, 4, 5].map((epoch) => ({ epoch, loss: 0.7, lr: 0 }));
    const geo = buildTrainCurvesSvg(points);
    for (const [key, value] of [
      ['loss', 0.7],
      ['lr', 0],
    ] as const) {
      const p = panel(geo, key);
      assert.ok(p.yDomain[0] < value && value < p.yDomain[1], `${key}: ${p.yDomain.join('..')}`);
      assert.ok(p.yTicks.length >= 3);
      const ys = new Set(p.series[0]!.points.map((q) => q.y));
      assert.equal(ys.size, 1, 'flat');
      const y = [...ys][0]!;
      assert.ok(y > p.plot.top + 30 && y < p.plot.bottom - 30);
    }
    const img = await assertValidPng(await renderTrainCurvesPng(points));
    const s = series(geo, 'lr');
    const [a, b] = [s.points[1]!, s.points[2]!];
    assert.ok(colourNear(img, (a.x + b.x) / 2, a.y, s.color));
  });

  test('NaN and Infinity losses are skipped and leave a gap in the line', async () => {
    const losses = [1.3, 0.8, NaN, 0.4, 0.3, Infinity, 0.2, -Infinity, 0.12, 0.1];
    const points = losses.map((loss, i) => ({ epoch: i + 1, loss, lr: 0.01 }));
    const geo = buildTrainCurvesSvg(points);
    assert.ok(!/NaN|Infinity/.test(geo.svg));
    const s = series(geo, 'loss');
    assert.deepEqual(
      s.points.map((p) => p.epoch),
      [1, 2, 4, 5, 7, 9, 10],
    );
    assert.deepEqual(
      s.segments.map((seg) => seg.map((p) => p.epoch)),
      [[1, 2], [4, 5], [7], [9, 10]],
    );
    // The y range comes from the finite values only.
    const p = panel(geo, 'loss');
    assert.ok(p.yDomain[0] <= 0.1 && p.yDomain[1] >= 1.3 && p.yDomain[1] < 2);

    const img = await assertValidPng(await renderTrainCurvesPng(points));
    const at = (e: number): CurvePoint => s.points.find((q) => q.epoch === e)!;
    // No line across the gaps (2 to 4, 5 to 7), but the lone epoch 7 keeps its marker.
    for (const [a, b] of [
      [2, 4],
      [5, 7],
      [7, 9],
    ] as const) {
      const [mx, my] = [(at(a).x + at(b).x) / 2, (at(a).y + at(b).y) / 2];
      assert.ok(!colourNear(img, mx, my, s.color, 4), `gap ${a}-${b}`);
    }
    assert.ok(colourNear(img, at(7).x, at(7).y, s.color));
    assert.ok(colourNear(img, (at(1).x + at(2).x) / 2, (at(1).y + at(2).y) / 2, s.color));
  });

  test('no finite loss at all: the panel says so instead of drawing', async () => {
    const points = [1, 2, 3].map((epoch) => ({ epoch, loss: NaN, lr: 0.01 }));
    const geo = buildTrainCurvesSvg(points);
    assert.equal(panel(geo, 'loss').message, CURVE_EMPTY_MESSAGES.loss);
    assert.equal(panel(geo, 'lr').message, null);
    assert.ok(geo.svg.includes(CURVE_EMPTY_MESSAGES.loss));
    await assertValidPng(await renderTrainCurvesPng(points));
  });

  test('no evaluated epoch: "no evaluation yet" drawn in the score panel, no legend', async () => {
    const points = knownRun(6, 100);
    const geo = buildTrainCurvesSvg(points);
    const ev = panel(geo, 'eval');
    assert.equal(ev.message, 'no evaluation yet');
    assert.ok(geo.svg.includes('>no evaluation yet<'));
    assert.ok(!geo.svg.includes('>Recall@1<'), 'no legend without lines');
    assert.ok(ev.series.every((s) => s.points.length === 0));
    const img = await assertValidPng(await renderTrainCurvesPng(points));
    // The message is really rendered (dark text pixels around the plot centre)...
    const cx = (ev.plot.left + ev.plot.right) / 2;
    const cy = (ev.plot.top + ev.plot.bottom) / 2;
    let dark = 0;
    for (let y = cy - 30; y < cy + 30; y++) {
      for (let x = cx - 150; x < cx + 150; x++) if (pixel(img, x, y)[0]! < 100) dark++;
    }
    assert.ok(dark > 200, `${dark} dark pixels`);
    // ...and neither score colour appears anywhere in the panel.
    for (let y = ev.plot.top; y < ev.plot.bottom; y += 2) {
      for (let x = ev.plot.left; x < ev.plot.right; x += 2) {
        const p = pixel(img, x, y);
        for (const hex of [CURVE_COLORS.recall1, CURVE_COLORS.mAP]) {
          assert.ok(!rgbOf(hex).every((c, i) => Math.abs(c - p[i]!) <= 6), `(${x}, ${y})`);
        }
      }
    }
  });

  test('500 epochs: few non-overlapping epoch ticks, markers dropped, lines still there', async () => {
    const points = knownRun(500, 25);
    // A lone finite loss among close neighbours still gets a marker.
    points[99]!.loss = NaN;
    points[101]!.loss = NaN;
    const geo = buildTrainCurvesSvg(points);
    const ticks = panel(geo, 'loss').xTicks;
    assert.ok(ticks.length >= 3 && ticks.length <= 11, `${ticks.length} ticks`);
    for (let i = 1; i < ticks.length; i++) {
      // DejaVu Sans digits are 0.64 em; at 34 px a label is at most ~22 px per character.
      const room = ((ticks[i]!.label.length + ticks[i - 1]!.label.length) / 2) * 22 + 20;
      assert.ok(
        ticks[i]!.pos - ticks[i - 1]!.pos > room,
        `${ticks[i - 1]!.label} ${ticks[i]!.label}`,
      );
    }
    assert.ok(ticks.every((t) => Number.isInteger(t.value)));
    assert.ok(ticks.some((t) => t.value === 500));
    const loss = series(geo, 'loss');
    assert.equal(loss.markerRadius, 0);
    assert.ok(series(geo, 'recall1').markerRadius > 0, '20 evaluated epochs keep their markers');
    assert.ok(geo.svg.length < 200_000, `${geo.svg.length} bytes of SVG`);

    const img = await assertValidPng(await renderTrainCurvesPng(points));
    for (const e of [1, 50, 101, 250, 499, 500]) {
      const p = loss.points.find((q) => q.epoch === e)!;
      assert.ok(colourNear(img, p.x, p.y, loss.color), `epoch ${e}`);
    }
    assertWhiteAwayFromLines(img, panel(geo, 'lr'));
  });

  test('scores outside [0, 1] are clipped to their panel', async () => {
    const points: EpochPoint[] = [
      { epoch: 1, loss: 1, lr: 0.01, recall1: 1.8, mAP: 0.5 },
      { epoch: 2, loss: 0.5, lr: 0.01, recall1: 0.5, mAP: 0.6 },
    ];
    const geo = buildTrainCurvesSvg(points);
    const ev = panel(geo, 'eval');
    const img = await assertValidPng(await renderTrainCurvesPng(points));
    // Nowhere above the panel (the legend, further right, is left out of the scan).
    const x0 = series(geo, 'recall1').points[0]!.x;
    let scanned = 0;
    for (let y = 0; y < ev.plot.top - 2; y += 2) {
      for (let x = x0; x < x0 + 600; x += 3) {
        assert.ok(!colourNear(img, x, y, CURVE_COLORS.recall1, 0), `(${x}, ${y})`);
        scanned++;
      }
    }
    assert.ok(scanned > 50_000);
    // Inside the panel the line is drawn from where it enters at the top.
    const [a, b] = series(geo, 'recall1').points as [CurvePoint, CurvePoint];
    const yIn = ev.plot.top + 10;
    const xIn = a.x + ((b.x - a.x) * (yIn - a.y)) / (b.y - a.y);
    assert.ok(colourNear(img, xIn, yIn, CURVE_COLORS.recall1));
  });

  test('refused: no epoch, epochs not increasing, epochs not finite', async () => {
    const bad: EpochPoint[][] = [
      [],
      [
        { epoch: 2, loss: 1, lr: 0.1 },
        { epoch: 2, loss: 1, lr: 0.1 },
      ],
      [
        { epoch: 3, loss: 1, lr: 0.1 },
        { epoch: 2, loss: 1, lr: 0.1 },
      ],
      [{ epoch: NaN, loss: 1, lr: 0.1 }],
      [
        { epoch: 1, loss: 1, lr: 0.1 },
        { epoch: Infinity, loss: 1, lr: 0.1 },
      ],
    ];
    for (const points of bad) {
      assert.throws(
        () => buildTrainCurvesSvg(points),
        (err: unknown) => err instanceof InvalidArgumentError && err.code === 'PIF_INVALID_ARG',
        JSON.stringify(points),
      );
      await assert.rejects(renderTrainCurvesPng(points), InvalidArgumentError);
    }
  });
});
