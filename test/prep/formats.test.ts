/**
 * Every input format and depth prep must read, framed with `pad` onto white: the subject lands where the
 * scaled source puts it, transparent areas and padding are the background, broken files fail alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { prepImages, withPrepDefaults, type PrepReport } from '../../src/prep/index.js';
import {
  bboxWhere,
  encodeImage,
  exifOrientedJpeg,
  near,
  noiseImage,
  NOT_AN_IMAGE,
  photoLikeImage,
  pixel,
  pngBombHeader,
  readRaw,
  renderScene,
  truncated,
  type Box,
  type FixtureFormat,
  type RawImage,
  type Rgb,
  type Scene,
} from '../helpers/images.js';

const SIZE = 64;
const YELLOW: Rgb = [250, 220, 60]; // luma ≈ 214
const NAVY: Rgb = [30, 40, 120]; // luma ≈ 44
const WHITE = [255, 255, 255];
const wide: Scene = { width: 96, height: 64, background: NAVY, subject: { left: 24, top: 16, width: 40, height: 32, colour: YELLOW } };
const tall: Scene = { width: 64, height: 96, background: NAVY, subject: { left: 16, top: 24, width: 32, height: 40, colour: YELLOW } };

/** Where the subject must be after `pad`: the source box scaled by size/long side and centred (float). */
function expectedPadBox(scene: Scene, size: number): Box {
  const s = size / Math.max(scene.width, scene.height);
  const offX = (size - scene.width * s) / 2;
  const offY = (size - scene.height * s) / 2;
  const b = scene.subject!;
  return { left: offX + b.left * s, top: offY + b.top * s, width: b.width * s, height: b.height * s };
}

/** Edges within `tol` pixels: resampling blends one pixel at each edge. */
function expectBoxNear(actual: Box | null, expected: Box, tol = 1.5): void {
  expect(actual, 'subject not found in the output').not.toBeNull();
  const a = actual!;
  const edges = (b: Box) => [b.left, b.top, b.left + b.width, b.top + b.height];
  const [ea, ee] = [edges(a), edges(expected)];
  for (let i = 0; i < 4; i++) {
    expect(Math.abs(ea[i] - ee[i]), `edge ${i}: got box ${JSON.stringify(a)}, expected ${JSON.stringify(expected)}`).toBeLessThanOrEqual(tol);
  }
}

interface Fixture {
  file: string;
  data: Buffer;
  scene?: Scene;
  /** Colour the subject has in the output. */
  subjectColour?: number[];
  /** Colour of the source's background in the output (white where it was transparent). */
  bgColour?: number[];
  tol?: number;
}

const dist2 = (a: number[], b: number[]) => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);
/** A pixel belongs to the subject when the subject colour is the nearest of subject, background and padding. */
const isSubject = (f: Fixture) => (px: number[]) => {
  const d = dist2(px, f.subjectColour!);
  return d < dist2(px, f.bgColour!) && d < dist2(px, WHITE);
};

let dir: string;
let report: PrepReport;
const fixtures: Fixture[] = [];
const LIGHT: Rgb = [220, 220, 220];
const DARK: Rgb = [50, 50, 50];
const greyScene: Scene = { ...wide, background: DARK, subject: { ...wide.subject!, colour: LIGHT } };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dbt-prep-formats-'));
  const raw = join(dir, 'raw');
  const add = (f: Fixture) => fixtures.push(f);
  const wideImg = renderScene(wide);
  const wideAlpha = renderScene({ ...wide, background: 'transparent' });
  const colourFormats: [FixtureFormat, RawImage, number][] = [
    ['png', wideImg, 2],
    ['png16', wideImg, 2],
    ['jpeg', wideImg, 24],
    ['jpeg-cmyk', wideImg, 60],
    ['webp', wideImg, 2],
    ['avif', wideImg, 12],
    ['tiff', wideImg, 2],
    ['gif', wideImg, 24],
    ['gif-animated', wideImg, 24],
  ];
  for (const [fmt, img, tol] of colourFormats) {
    add({ file: `${fmt}.${ext(fmt)}`, data: await encodeImage(img, fmt), scene: wide, subjectColour: YELLOW, bgColour: NAVY, tol });
  }
  // Transparency: the background must come out white (the --bg default), not navy or black.
  for (const fmt of ['png', 'png-palette', 'webp', 'gif', 'png16'] as FixtureFormat[]) {
    add({ file: `alpha-${fmt}.${ext(fmt)}`, data: await encodeImage(wideAlpha, fmt), scene: wide, subjectColour: YELLOW, bgColour: WHITE, tol: 24 });
  }
  const greyImg = renderScene(greyScene);
  const greyAlpha = renderScene({ ...greyScene, background: 'transparent' });
  add({ file: 'gray.png', data: await encodeImage(greyImg, 'gray'), scene: greyScene, subjectColour: LIGHT, bgColour: DARK, tol: 4 });
  add({ file: 'gray16.png', data: await encodeImage(greyImg, 'gray16'), scene: greyScene, subjectColour: LIGHT, bgColour: DARK, tol: 4 });
  add({ file: 'gray-alpha.png', data: await encodeImage(greyAlpha, 'gray-alpha'), scene: greyScene, subjectColour: LIGHT, bgColour: WHITE, tol: 4 });
  // EXIF orientation: the stored pixels are turned; the output must show the upright picture.
  const tallImg = renderScene(tall);
  for (const o of [3, 6, 8] as const) add({ file: `exif-${o}.jpg`, data: await exifOrientedJpeg(tallImg, o), scene: tall, subjectColour: YELLOW, bgColour: NAVY, tol: 24 });
  add({ file: 'tall.png', data: await encodeImage(tallImg, 'png'), scene: tall, subjectColour: YELLOW, bgColour: NAVY, tol: 2 });
  const tiny: Scene = { width: 12, height: 8, background: NAVY, subject: { left: 3, top: 2, width: 6, height: 4, colour: YELLOW } };
  add({ file: 'tiny.png', data: await encodeImage(renderScene(tiny), 'png'), scene: tiny, subjectColour: YELLOW, bgColour: NAVY, tol: 40 });
  const big: Scene = { width: 2400, height: 1600, background: NAVY, subject: { left: 600, top: 400, width: 1000, height: 800, colour: YELLOW } };
  add({ file: 'big.jpg', data: await encodeImage(renderScene(big), 'jpeg'), scene: big, subjectColour: YELLOW, bgColour: NAVY, tol: 24 });
  // Broken and foreign files.
  add({ file: 'truncated.jpg', data: truncated(await encodeImage(noiseImage(160, 120, 5), 'jpeg')) });
  add({ file: 'truncated.png', data: truncated(await encodeImage(noiseImage(160, 120, 6), 'png')) });
  add({ file: 'text.png', data: NOT_AN_IMAGE });
  add({ file: 'bomb.png', data: pngBombHeader(100_000, 100_000) });
  add({ file: 'readme.md', data: Buffer.from('# notes\n') });
  mkdirSync(raw);
  for (const f of fixtures) writeFileSync(join(raw, f.file), f.data);
  report = await prepImages(withPrepDefaults({ inputs: [raw], out: join(dir, 'out'), size: SIZE, concurrency: 2 }), { cwd: dir });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ext(fmt: FixtureFormat): string {
  return { png: 'png', png16: 'png', 'png-palette': 'png', gray: 'png', gray16: 'png', 'gray-alpha': 'png', jpeg: 'jpg', 'jpeg-cmyk': 'jpg', webp: 'webp', avif: 'avif', tiff: 'tif', gif: 'gif', 'gif-animated': 'gif' }[fmt];
}

const outputOf = (file: string) => join(dir, 'out', file.replace(/\.[^.]+$/, '.png'));

describe('prep reads every format and depth', () => {
  it('processes the images, fails the broken ones one by one, ignores the non-image', () => {
    const failed = Object.fromEntries(report.failures.map((f) => [f.source.split('/').pop(), f.reason]));
    expect(Object.keys(failed).sort()).toEqual(['bomb.png', 'text.png', 'truncated.jpg', 'truncated.png']);
    expect(failed['truncated.jpg']).toMatch(/truncated or corrupt/);
    expect(failed['truncated.png']).toMatch(/truncated or corrupt/);
    expect(failed['text.png']).toMatch(/not an image/);
    expect(failed['bomb.png']).toMatch(/100000×100000.*--max-pixels/);
    expect(report.ignored.map((i) => i.source)).toEqual(['raw/readme.md']);
    expect(report.counts).toMatchObject({ processed: fixtures.length - 5, failed: 4, ignored: 1, skipped: 0 });
    expect(report.ok).toBe(false);
  });

  const images = () => fixtures.filter((f) => f.scene);
  it.each([
    'png', 'png16', 'jpeg', 'jpeg-cmyk', 'webp', 'avif', 'tiff', 'gif', 'gif-animated',
    'alpha-png', 'alpha-png-palette', 'alpha-webp', 'alpha-gif', 'alpha-png16', 'gray', 'gray16', 'gray-alpha',
    'exif-3', 'exif-6', 'exif-8', 'tall', 'tiny', 'big',
  ])('%s: 8-bit sRGB square, subject where the scaled source puts it, white around it', async (name) => {
    const f = images().find((x) => x.file.replace(/\.[^.]+$/, '') === name)!;
    expect(f, name).toBeDefined();
    const out = await readRaw(outputOf(f.file));
    expect([out.width, out.height, out.channels]).toEqual([SIZE, SIZE, 3]);
    const box = bboxWhere(out, isSubject(f));
    const want = expectedPadBox(f.scene!, SIZE);
    expectBoxNear(box, want, f.file.startsWith('tiny') ? 3 : 1.5);
    const centre = pixel(out, Math.round(want.left + want.width / 2), Math.round(want.top + want.height / 2));
    expect(near(centre, f.subjectColour!, f.tol!), `subject colour ${centre} vs ${f.subjectColour}`).toBe(true);
    // Padding (top row for wide sources, left column for tall ones) is exactly the background.
    const s = f.scene!;
    expect(s.width >= s.height ? pixel(out, SIZE >> 1, 0) : pixel(out, 0, SIZE >> 1)).toEqual(WHITE);
    // Halfway between the source's left edge and the subject: the source's own background.
    const scale = SIZE / Math.max(s.width, s.height);
    const bx = Math.floor((SIZE - s.width * scale) / 2 + (s.subject!.left / 2) * scale);
    const by = Math.floor((SIZE - s.height * scale) / 2 + (s.height / 2) * scale);
    const bgPx = pixel(out, bx, by);
    expect(near(bgPx, f.bgColour!, f.tol!), `background ${bgPx} vs ${f.bgColour} at ${bx},${by}`).toBe(true);
  });

  it('the animated GIF used its first frame and says so', () => {
    const r = report.images.find((i) => i.source.endsWith('gif-animated.gif'))!;
    expect(r.warnings.map((w) => w.code)).toContain('animated');
  });

  it('the tiny source is reported as small and heavily upscaled', () => {
    const r = report.images.find((i) => i.source.endsWith('tiny.png'))!;
    expect(r.warnings.map((w) => w.code).sort()).toEqual(['small-source', 'upscaled']);
    expect(report.images.find((i) => i.source.endsWith('big.jpg'))!.warnings).toEqual([]);
  });

  it('records upright sizes for EXIF-rotated JPEGs', () => {
    for (const o of [6, 8]) {
      const r = report.images.find((i) => i.source.endsWith(`exif-${o}.jpg`))!;
      expect([r.width, r.height]).toEqual([64, 96]);
    }
  });

  it('converts an embedded colour profile to sRGB (a Display P3 JPEG of sRGB red comes out red)', async () => {
    const red = renderScene({ width: 32, height: 32, background: [255, 0, 0] });
    const p3 = await sharp(red.data, { raw: { width: 32, height: 32, channels: 3 } }).withIccProfile('p3').jpeg({ quality: 100 }).toBuffer();
    const stored = await sharp(p3, { ignoreIcc: true }).raw().toBuffer();
    expect(near(Array.from(stored.subarray(0, 3)), [255, 0, 0], 10), `P3 values ${Array.from(stored.subarray(0, 3))} should differ from sRGB red`).toBe(false);
    const src = join(dir, 'p3.jpg');
    writeFileSync(src, p3);
    const r = await prepImages(withPrepDefaults({ inputs: [src], out: join(dir, 'out-p3'), size: SIZE }), { cwd: dir });
    expect(r.ok).toBe(true);
    const out = await readRaw(join(dir, 'out-p3', 'p3.png'));
    expect(near(pixel(out, 32, 32), [255, 0, 0], 6), `got ${pixel(out, 32, 32)}`).toBe(true);
  });

  it('--keep-alpha keeps a source\'s transparency, and pads with transparent pixels', async () => {
    const r = await prepImages(withPrepDefaults({ inputs: [join(dir, 'raw', 'alpha-png.png')], out: join(dir, 'out-alpha'), size: SIZE, keepAlpha: true }), { cwd: dir });
    expect(r.ok).toBe(true);
    const out = await readRaw(join(dir, 'out-alpha', 'alpha-png.png'));
    expect(out.channels).toBe(4);
    const want = expectedPadBox(wide, SIZE);
    expect(pixel(out, 32, 2)[3]).toBe(0); // padding
    expect(pixel(out, 4, 32)[3]).toBe(0); // the source's transparent background
    expect(pixel(out, Math.round(want.left + want.width / 2), 32)).toEqual([...YELLOW, 255]);
    expectBoxNear(bboxWhere(out, (px) => px[3] >= 128), want);
  });

  it('--max-pixels is configurable', async () => {
    const r = await prepImages(
      withPrepDefaults({ inputs: [join(dir, 'raw', 'png.png')], out: join(dir, 'out-limit'), size: SIZE, maxPixels: 96 * 64 - 1 }),
      { cwd: dir },
    );
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0].reason).toMatch(/96×64 .*over the --max-pixels limit of 6143/);
  });
});
