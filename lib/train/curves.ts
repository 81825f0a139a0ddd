/**
 * `train_curves.png`, the picture the trainer writes next to its outputs: three stacked panels
 * sharing the epoch axis (training loss, learning rate, recall@1 and mAP of the evaluated
 * epochs), drawn as SVG and rendered to PNG with sharp at 1920×1440, in the style of
 * `histogram.png` (../dataset/charts.ts). Stacked rather than side by side so that a long run
 * keeps the whole canvas width for its epochs.
 */
import sharp from 'sharp';

import { chartText } from '../dataset/charts.js';
import { InvalidArgumentError } from '../errors.js';

export interface EpochPoint {
  /** 1-based. */
  epoch: number;
  /** Mean training loss of the epoch. */
  loss: number;
  /** Learning rate at the epoch's last step. */
  lr: number;
  /** Fractions in [0, 1], present on evaluated epochs only. */
  recall1?: number;
  mAP?: number;
}

export type CurveSeriesName = 'loss' | 'lr' | 'recall1' | 'mAP';
export type CurvePanelKey = 'loss' | 'lr' | 'eval';

/** matplotlib's default colours C0..C3, one per series so no two panels share a colour. */
export const CURVE_COLORS: Readonly<Record<CurveSeriesName, string>> = {
  loss: '#1f77b4',
  lr: '#ff7f0e',
  recall1: '#2ca02c',
  mAP: '#d62728',
};

export const CURVE_LABELS: Readonly<Record<CurveSeriesName, string>> = {
  loss: 'Loss',
  lr: 'Learning rate',
  recall1: 'Recall@1',
  mAP: 'mAP',
};

export const CURVE_TITLES: Readonly<Record<CurvePanelKey, string>> = {
  loss: 'Training loss',
  lr: 'Learning rate',
  eval: 'Recall@1 and mAP',
};

export const CURVE_X_LABEL = 'Epoch';

/** What a panel shows instead of lines when it has no point to draw. */
export const CURVE_EMPTY_MESSAGES: Readonly<Record<CurvePanelKey, string>> = {
  loss: 'no finite loss values',
  lr: 'no finite learning rates',
  eval: 'no evaluation yet',
};

export interface CurveRect {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** One drawn point, at (x, y) in pixels of the rendered PNG. */
export interface CurvePoint {
  epoch: number;
  value: number;
  x: number;
  y: number;
}

export interface CurveSeries {
  name: CurveSeriesName;
  color: string;
  points: CurvePoint[];
  /** Runs of points joined by a line; a non-finite value ends a run (the line has a gap). */
  segments: CurvePoint[][];
  /** 0 where the points are too close for markers (they would merge into a band). */
  markerRadius: number;
}

export interface CurveTick {
  value: number;
  label: string;
  /** x (epoch axis) or y (value axis) in pixels. */
  pos: number;
}

export interface CurvePanel {
  key: CurvePanelKey;
  title: string;
  yLabel: string;
  plot: CurveRect;
  /** The values at the bottom and top of the plot area (the data lie INSET px inside). */
  yDomain: [number, number];
  yTicks: CurveTick[];
  xTicks: CurveTick[];
  series: CurveSeries[];
  /** The text shown in place of the lines, or null when there is something to draw. */
  message: string | null;
}

export interface TrainCurvesSvg {
  svg: string;
  width: number;
  height: number;
  /** The epochs mapped to the left and right ends of the plot areas (less INSET px). */
  xDomain: [number, number];
  panels: CurvePanel[];
}

const WIDTH = 1920;
const HEIGHT = 1440;
const PANEL_H = HEIGHT / 3;
const PLOT_LEFT = 240;
const PLOT_RIGHT = 1880;
/** Plot top and bottom relative to the panel's top. */
const PLOT_TOP = 84;
const PLOT_BOTTOM = 364;
/** Data stay this far inside the frame so that end markers are not cut by it. */
const INSET = 24;
const TICK_FONT = 34;
const LABEL_FONT = 38;
const TITLE_FONT = 44;
const TICK_LEN = 14;
const FRAME_WIDTH = 3;
const LINE_WIDTH = 6;
const MAX_MARKER_RADIUS = 10;
/** Below this radius markers are dropped. */
const MIN_MARKER_RADIUS = 4;
const GRID_COLOR = '#e6e6e6';
/** At 34 px a tick label such as "1000" is about 90 px wide: 10 fit in 1640 px with room. */
const MAX_X_TICKS = 10;
const MAX_Y_TICKS = 6;

const r2 = (v: number): number => Math.round(v * 100) / 100;

function validate(points: readonly EpochPoint[]): void {
  if (points.length === 0) {
    throw new InvalidArgumentError('training curves need at least one epoch');
  }
  let prev = -Infinity;
  points.forEach((p, i) => {
    if (!Number.isFinite(p.epoch)) {
      throw new InvalidArgumentError(`epoch of point ${i} is not a finite number: ${p.epoch}`);
    }
    if (!(p.epoch > prev)) {
      throw new InvalidArgumentError(
        `epochs must increase: point ${i} has epoch ${p.epoch} after ${prev}`,
      );
    }
    prev = p.epoch;
  });
}

/** The smallest of 1, 2, 5 times a power of ten that is at least `raw` (> 0). */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5]) if (m * p >= raw * (1 - 1e-9)) return m * p;
  return 10 * p;
}

/** Tick labels with one shared format, chosen from the step (as matplotlib's ScalarFormatter). */
function formatTicks(values: readonly number[], step: number): string[] {
  const maxAbs = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const stepExp = Math.floor(Math.log10(step));
  if (maxAbs >= 1e5 || (maxAbs > 0 && maxAbs < 1e-3)) {
    return values.map((v) => {
      if (v === 0) return '0';
      const digits = Math.min(20, Math.max(0, Math.floor(Math.log10(Math.abs(v))) - stepExp));
      return v
        .toExponential(digits)
        .replace(/\.?0+e/, 'e')
        .replace('e+', 'e');
    });
  }
  const decimals = Math.min(20, Math.max(0, -stepExp));
  return values.map((v) => v.toFixed(decimals));
}

/** Multiples of `step` from k0 to k1, snapped so that 3 × 0.1 prints as 0.3 and never -0. */
function multiples(k0: number, k1: number, step: number): number[] {
  const out: number[] = [];
  for (let k = k0; k <= k1; k++) {
    const v = Number((k * step).toPrecision(12));
    out.push(v === 0 ? 0 : v);
  }
  return out;
}

interface ValueAxis {
  domain: [number, number];
  values: number[];
  labels: string[];
}

/** A value axis covering `values` (finite) with nice ticks at both ends of the domain. */
function valueAxis(values: readonly number[]): ValueAxis {
  let lo = values.length ? Infinity : 0;
  let hi = values.length ? -Infinity : 1;
  for (const v of values) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  // A flat series still needs a range; relative, so a constant 1e-5 keeps its scale.
  if (hi - lo <= 1e-9 * Math.max(Math.abs(lo), Math.abs(hi))) {
    const pad = lo === 0 ? 0.5 : Math.abs(lo) * 0.1;
    [lo, hi] = [lo - pad, hi + pad];
  }
  const step = niceStep((hi - lo) / (MAX_Y_TICKS - 1));
  const k0 = Math.floor(lo / step + 1e-9);
  const k1 = Math.ceil(hi / step - 1e-9);
  const ticks = multiples(k0, k1, step);
  return {
    domain: [ticks[0] ?? lo, ticks[ticks.length - 1] ?? hi],
    values: ticks,
    labels: formatTicks(ticks, step),
  };
}

const FIXED_UNIT_AXIS: ValueAxis = {
  domain: [0, 1],
  values: [0, 0.2, 0.4, 0.6, 0.8, 1],
  labels: ['0.0', '0.2', '0.4', '0.6', '0.8', '1.0'],
};

interface EpochAxis {
  domain: [number, number];
  xOf: (epoch: number) => number;
  ticks: CurveTick[];
}

function epochAxis(points: readonly EpochPoint[]): EpochAxis {
  let lo = (points[0] as EpochPoint).epoch;
  let hi = (points[points.length - 1] as EpochPoint).epoch;
  // One epoch: centre it, with a unit of room so the scale is not zero.
  if (hi === lo) [lo, hi] = [lo - 0.5, hi + 0.5];
  const x0 = PLOT_LEFT + INSET;
  const scale = (PLOT_RIGHT - INSET - x0) / (hi - lo);
  const xOf = (e: number): number => r2(x0 + (e - lo) * scale);
  // Ticks anywhere in the visible width (the inset included), at whole epochs.
  const visLo = lo - INSET / scale;
  const visHi = hi + INSET / scale;
  const step = Math.max(1, niceStep((hi - lo) / (MAX_X_TICKS - 1)));
  const values = multiples(Math.ceil(visLo / step), Math.floor(visHi / step), step);
  const labels = formatTicks(values, step);
  const ticks = values.map((value, i) => ({ value, label: labels[i] ?? '', pos: xOf(value) }));
  return { domain: [lo, hi], xOf, ticks };
}

function buildSeries(
  name: CurveSeriesName,
  entries: readonly { epoch: number; value: number }[],
  xOf: (e: number) => number,
  yOf: (v: number) => number,
): CurveSeries {
  const points: CurvePoint[] = [];
  const segments: CurvePoint[][] = [];
  let run: CurvePoint[] = [];
  for (const { epoch, value } of entries) {
    if (!Number.isFinite(value)) {
      if (run.length) segments.push(run);
      run = [];
      continue;
    }
    const p = { epoch, value, x: xOf(epoch), y: yOf(value) };
    points.push(p);
    run.push(p);
  }
  if (run.length) segments.push(run);
  let gap = Infinity;
  for (let i = 1; i < points.length; i++) {
    gap = Math.min(gap, (points[i] as CurvePoint).x - (points[i - 1] as CurvePoint).x);
  }
  const radius = Math.min(MAX_MARKER_RADIUS, gap * 0.4);
  return {
    name,
    color: CURVE_COLORS[name],
    points,
    segments,
    markerRadius: radius >= MIN_MARKER_RADIUS ? r2(radius) : 0,
  };
}

function buildPanel(
  key: CurvePanelKey,
  index: number,
  points: readonly EpochPoint[],
  xAxis: EpochAxis,
): CurvePanel {
  const top = index * PANEL_H;
  const plot = {
    left: PLOT_LEFT,
    top: top + PLOT_TOP,
    right: PLOT_RIGHT,
    bottom: top + PLOT_BOTTOM,
  };
  const names: CurveSeriesName[] = key === 'eval' ? ['recall1', 'mAP'] : [key];
  // Evaluated epochs only; a missing value is skipped without breaking the line, so an eval
  // every k epochs still draws as one line.
  const entries = names.map((n) =>
    points.flatMap((p) => (p[n] === undefined ? [] : [{ epoch: p.epoch, value: p[n] }])),
  );
  const finite = entries.flat().filter((e) => Number.isFinite(e.value));
  const axis = key === 'eval' ? FIXED_UNIT_AXIS : valueAxis(finite.map((e) => e.value));
  const [d0, d1] = axis.domain;
  const y0 = plot.bottom - INSET;
  const yScale = (plot.bottom - plot.top - 2 * INSET) / (d1 - d0);
  const yOf = (v: number): number => r2(y0 - (v - d0) * yScale);
  const series = names.map((n, i) => buildSeries(n, entries[i] ?? [], xAxis.xOf, yOf));
  return {
    key,
    title: CURVE_TITLES[key],
    yLabel: key === 'eval' ? 'Score' : CURVE_LABELS[key],
    plot,
    yDomain: [d0, d1],
    yTicks: axis.values.map((value, i) => ({
      value,
      label: axis.labels[i] ?? '',
      pos: yOf(value),
    })),
    xTicks: xAxis.ticks,
    series,
    message: finite.length === 0 ? CURVE_EMPTY_MESSAGES[key] : null,
  };
}

const text = chartText;

const line = (x1: number, y1: number, x2: number, y2: number, stroke: string, w: number): string =>
  `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${stroke}" stroke-width="${w}"/>`;

function drawSeries(s: CurveSeries): string {
  const parts: string[] = [];
  for (const seg of s.segments) {
    if (seg.length < 2) continue;
    parts.push(
      `<polyline points="${seg.map((p) => `${p.x},${p.y}`).join(' ')}" fill="none" ` +
        `stroke="${s.color}" stroke-width="${LINE_WIDTH}" stroke-linejoin="round" ` +
        `stroke-linecap="round"/>`,
    );
  }
  // A lone point (between two gaps) has no line, so it keeps a marker whatever the spacing.
  for (const seg of s.segments) {
    for (const p of seg) {
      const r = s.markerRadius || (seg.length === 1 ? MIN_MARKER_RADIUS * 2 : 0);
      if (r > 0) parts.push(`<circle cx="${p.x}" cy="${p.y}" r="${r}" fill="${s.color}"/>`);
    }
  }
  return parts.join('');
}

function drawLegend(panel: CurvePanel): string {
  const parts: string[] = [];
  const y = panel.plot.top - 40;
  let x = panel.plot.right - 520;
  for (const s of panel.series) {
    parts.push(line(x, y, x + 60, y, s.color, LINE_WIDTH));
    parts.push(`<circle cx="${x + 30}" cy="${y}" r="${MAX_MARKER_RADIUS}" fill="${s.color}"/>`);
    parts.push(text(x + 76, y + TICK_FONT * 0.35, CURVE_LABELS[s.name], TICK_FONT, 'start'));
    x += 300;
  }
  return parts.join('');
}

function drawPanel(panel: CurvePanel, index: number): string {
  const { plot } = panel;
  const parts: string[] = [];
  const midX = (plot.left + plot.right) / 2;
  const midY = (plot.top + plot.bottom) / 2;
  parts.push(text(midX, plot.top - 28, panel.title, TITLE_FONT, 'middle'));
  for (const t of panel.yTicks) {
    parts.push(line(plot.left, t.pos, plot.right, t.pos, GRID_COLOR, 2));
    parts.push(line(plot.left - TICK_LEN, t.pos, plot.left, t.pos, '#000', FRAME_WIDTH));
    parts.push(
      text(plot.left - TICK_LEN - 10, t.pos + TICK_FONT * 0.35, t.label, TICK_FONT, 'end'),
    );
  }
  for (const t of panel.xTicks) {
    parts.push(line(t.pos, plot.bottom, t.pos, plot.bottom + TICK_LEN, '#000', FRAME_WIDTH));
    parts.push(text(t.pos, plot.bottom + TICK_LEN + TICK_FONT, t.label, TICK_FONT, 'middle'));
  }
  parts.push(
    `<rect x="${plot.left}" y="${plot.top}" width="${plot.right - plot.left}" ` +
      `height="${plot.bottom - plot.top}" fill="none" stroke="#000" stroke-width="${FRAME_WIDTH}"/>`,
  );
  parts.push(
    text(midX, plot.bottom + TICK_LEN + TICK_FONT + 56, CURVE_X_LABEL, LABEL_FONT, 'middle'),
  );
  const yLabelX = 56;
  parts.push(
    text(
      yLabelX,
      midY,
      panel.yLabel,
      LABEL_FONT,
      'middle',
      ` transform="rotate(-90 ${yLabelX} ${midY})"`,
    ),
  );
  if (panel.message !== null) {
    parts.push(text(midX, midY + LABEL_FONT * 0.35, panel.message, LABEL_FONT, 'middle'));
    return parts.join('');
  }
  if (panel.series.length > 1) parts.push(drawLegend(panel));
  // Recall or mAP outside [0, 1] (a caller's bug) must not draw over the neighbouring panel.
  const clipId = `plot${index}`;
  parts.push(
    `<clipPath id="${clipId}"><rect x="${plot.left}" y="${plot.top}" ` +
      `width="${plot.right - plot.left}" height="${plot.bottom - plot.top}"/></clipPath>`,
  );
  parts.push(`<g clip-path="url(#${clipId})">${panel.series.map(drawSeries).join('')}</g>`);
  return parts.join('');
}

/** Builds the picture as SVG (1920×1440) with the geometry of every panel, tick and point. */
export function buildTrainCurvesSvg(points: readonly EpochPoint[]): TrainCurvesSvg {
  validate(points);
  const xAxis = epochAxis(points);
  const keys: CurvePanelKey[] = ['loss', 'lr', 'eval'];
  const panels = keys.map((k, i) => buildPanel(k, i, points, xAxis));
  const body = panels.map(drawPanel).join('');
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" ` +
    `viewBox="0 0 ${WIDTH} ${HEIGHT}"><rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>` +
    `${body}</svg>`;
  return { svg, width: WIDTH, height: HEIGHT, xDomain: xAxis.domain, panels };
}

/** The picture as PNG bytes: opaque RGB on white, 300 dpi recorded as for histogram.png. */
export async function renderTrainCurvesPng(points: readonly EpochPoint[]): Promise<Buffer> {
  const { svg } = buildTrainCurvesSvg(points);
  return sharp(Buffer.from(svg)).flatten({ background: '#fff' }).withDensity(300).png().toBuffer();
}
