/**
 * A dependency-free PNG line plot: an RGB raster with lines, markers and a built-in 5x7 pixel font, encoded with
 * node:zlib (deflate, crc32). Enough for the benchmark's latency chart without native packages.
 */
import { crc32, deflateSync } from 'node:zlib';

type Rgb = readonly [number, number, number];

const FONT: Record<string, string> = {
  '0': '01110100011001110101110011000101110',
  '1': '00100011000010000100001000010001110',
  '2': '01110100010000100010001000100011111',
  '3': '11111000100010000010000011000101110',
  '4': '00010001100101010010111110001000010',
  '5': '11111100001111000001000011000101110',
  '6': '00110010001000011110100011000101110',
  '7': '11111000010001000100010000100001000',
  '8': '01110100011000101110100011000101110',
  '9': '01110100011000101111000010001001100',
  A: '01110100011000110001111111000110001',
  B: '11110100011000111110100011000111110',
  C: '01110100011000010000100001000101110',
  D: '11100100101000110001100011001011100',
  E: '11111100001000011110100001000011111',
  F: '11111100001000011110100001000010000',
  G: '01110100011000010111100011000101111',
  H: '10001100011000111111100011000110001',
  I: '01110001000010000100001000010001110',
  J: '00111000100001000010000101001001100',
  K: '10001100101010011000101001001010001',
  L: '10000100001000010000100001000011111',
  M: '10001110111010110101100011000110001',
  N: '10001100011100110101100111000110001',
  O: '01110100011000110001100011000101110',
  P: '11110100011000111110100001000010000',
  Q: '01110100011000110001101011001001101',
  R: '11110100011000111110101001001010001',
  S: '01111100001000001110000010000111110',
  T: '11111001000010000100001000010000100',
  U: '10001100011000110001100011000101110',
  V: '10001100011000110001100010101000100',
  W: '10001100011000110101101011010101010',
  X: '10001100010101000100010101000110001',
  Y: '10001100011000101010001000010000100',
  Z: '11111000010001000100010001000011111',
  ' ': '00000000000000000000000000000000000',
  '.': '00000000000000000000000000110001100',
  ',': '00000000000000000000011000010001000',
  '-': '00000000000000011111000000000000000',
  '/': '00000000010001000100010001000000000',
  ':': '00000011000110000000011000110000000',
  '(': '00010001000100001000010000010000010',
  ')': '01000001000001000010000100010001000',
  '%': '11000110010001000100010001001100011',
  '=': '00000000001111100000111110000000000',
  '+': '00000001000010011111001000010000000',
  _: '00000000000000000000000000000011111',
  '>': '01000001000001000001000100010001000',
  '<': '00010001000100010000010000010000010',
  '@': '01110100010000101101101011010101110',
};

export class Raster {
  readonly pixels: Buffer;
  readonly width: number;
  readonly height: number;
  constructor(width: number, height: number, background: Rgb = [255, 255, 255]) {
    this.width = width;
    this.height = height;
    this.pixels = Buffer.alloc(width * height * 3);
    for (let i = 0; i < width * height; i++) this.pixels.set(background, i * 3);
  }

  set(x: number, y: number, color: Rgb): void {
    const xi = Math.round(x);
    const yi = Math.round(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return;
    this.pixels.set(color, (yi * this.width + xi) * 3);
  }

  rect(x: number, y: number, w: number, h: number, color: Rgb): void {
    for (let j = 0; j < h; j++) for (let i = 0; i < w; i++) this.set(x + i, y + j, color);
  }

  /** A line `thickness` pixels wide; dash > 0 draws dashes of that length. */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb, thickness = 1, dash = 0): void {
    const length = Math.hypot(x1 - x0, y1 - y0);
    const steps = Math.max(1, Math.ceil(length * 2));
    const half = Math.floor(thickness / 2);
    for (let s = 0; s <= steps; s++) {
      if (dash > 0 && Math.floor(((s / steps) * length) / dash) % 2 === 1) continue;
      const x = x0 + ((x1 - x0) * s) / steps;
      const y = y0 + ((y1 - y0) * s) / steps;
      this.rect(x - half, y - half, thickness, thickness, color);
    }
  }

  /** Text in the 5x7 font (upper case), `scale` pixels per font pixel; anchor 'left' | 'center' | 'right'. */
  text(x: number, y: number, value: string, color: Rgb, scale = 2, anchor: 'left' | 'center' | 'right' = 'left'): void {
    const chars = [...value.toUpperCase()];
    const width = chars.length * 6 * scale - scale;
    let cx = anchor === 'left' ? x : anchor === 'center' ? x - width / 2 : x - width;
    for (const ch of chars) {
      const glyph = FONT[ch] ?? FONT[' ']!;
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++)
          if (glyph[row * 5 + col] === '1') this.rect(cx + col * scale, y + row * scale, scale, scale, color);
      }
      cx += 6 * scale;
    }
  }

  /** Text rotated 90° counter-clockwise (for a y-axis title), centred on (x, y). */
  verticalText(x: number, y: number, value: string, color: Rgb, scale = 2): void {
    const chars = [...value.toUpperCase()];
    const length = chars.length * 6 * scale - scale;
    let cy = y + length / 2;
    for (const ch of chars) {
      const glyph = FONT[ch] ?? FONT[' ']!;
      for (let row = 0; row < 7; row++) {
        for (let col = 0; col < 5; col++)
          if (glyph[row * 5 + col] === '1') this.rect(x + row * scale, cy - col * scale - scale, scale, scale, color);
      }
      cy -= 6 * scale;
    }
  }

  png(): Buffer {
    const stride = this.width * 3 + 1;
    const raw = Buffer.alloc(stride * this.height);
    for (let y = 0; y < this.height; y++) this.pixels.copy(raw, y * stride + 1, y * this.width * 3, (y + 1) * this.width * 3);
    const chunk = (type: string, data: Buffer): Buffer => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(data.length, 0);
      head.write(type, 4, 'ascii');
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
      return Buffer.concat([head, data, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(this.width, 0);
    ihdr.writeUInt32BE(this.height, 4);
    ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', deflateSync(raw)),
      chunk('IEND', Buffer.alloc(0)),
    ]);
  }
}

export interface Series {
  label: string;
  color: Rgb;
  dashed?: boolean;
  points: { x: number; y: number }[];
}

export interface Panel {
  title: string;
  series: Series[];
}

const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [225, 225, 225];

/** Panels side by side, log x (concurrency) and a shared log y (milliseconds). */
export function latencyChart(panels: Panel[], title: string, xLabel: string, yLabel: string): Buffer {
  const panelW = 560;
  const panelH = 440;
  const left = 90;
  const top = 70;
  const legendH = 30 + 22 * Math.max(...panels.map((p) => p.series.length));
  const image = new Raster(left + panels.length * panelW + 20, top + panelH + 70 + legendH);
  image.text(image.width / 2, 18, title, AXIS, 2, 'center');
  const all = panels.flatMap((p) => p.series.flatMap((s) => s.points)).filter((p) => Number.isFinite(p.y) && p.y > 0);
  const xs = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...all.map((p) => p.y))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...all.map((p) => p.y))));
  const xMin = Math.log(xs[0] ?? 1);
  const xMax = Math.log(xs[xs.length - 1] ?? 2);
  const plotW = panelW - 60;
  image.verticalText(20, top + panelH / 2, yLabel, AXIS, 2);
  panels.forEach((panel, index) => {
    const x0 = left + index * panelW;
    const px = (x: number): number => x0 + 20 + ((Math.log(x) - xMin) / (xMax - xMin || 1)) * (plotW - 40);
    const py = (y: number): number => top + panelH - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * panelH;
    for (let decade = yMin; decade <= yMax; decade *= 10) {
      for (const m of [1, 2, 5]) {
        const y = decade * m;
        if (y > yMax) break;
        image.line(x0, py(y), x0 + plotW, py(y), GRID);
        if (index === 0 || m === 1) image.text(x0 - 6, py(y) - 7, y >= 1 ? String(y) : y.toString(), AXIS, 2, 'right');
      }
    }
    image.line(x0, top, x0, top + panelH, AXIS, 2);
    image.line(x0, top + panelH, x0 + plotW, top + panelH, AXIS, 2);
    for (const x of xs) {
      image.line(px(x), top + panelH, px(x), top + panelH + 6, AXIS, 2);
      image.text(px(x), top + panelH + 12, String(x), AXIS, 2, 'center');
    }
    image.text(x0 + plotW / 2, top + panelH + 36, xLabel, AXIS, 2, 'center');
    image.text(x0 + plotW / 2, top - 30, panel.title, AXIS, 2, 'center');
    panel.series.forEach((series, s) => {
      const points = series.points.filter((p) => Number.isFinite(p.y) && p.y > 0);
      for (let i = 1; i < points.length; i++) {
        image.line(px(points[i - 1]!.x), py(points[i - 1]!.y), px(points[i]!.x), py(points[i]!.y), series.color, 3, series.dashed ? 8 : 0);
      }
      for (const p of points) image.rect(px(p.x) - 4, py(p.y) - 4, 9, 9, series.color);
      const ly = top + panelH + 70 + s * 22;
      image.line(x0 + 10, ly + 6, x0 + 50, ly + 6, series.color, 3, series.dashed ? 8 : 0);
      image.text(x0 + 60, ly, series.label, AXIS, 2);
    });
  });
  return image.png();
}
