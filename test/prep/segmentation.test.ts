/**
 * --white-bg through onnxruntime-node for real, with a colour-key stand-in for isnetis written by the test
 * (same input/output names and shapes). Composites are checked pixel by pixel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepImages, withPrepDefaults, type PrepOptions } from '../../src/prep/index.js';
import { FileFormatError, UsageError } from '../../src/errors.js';
import { bboxWhere, encodeImage, near, pixel, readRaw, renderScene, type Box, type RawImage, type Rgb, type Scene } from '../helpers/images.js';
import { colourKeySegModelBytes } from './seg-model.js';

const LIME: Rgb = [0, 255, 0];
const RED: Rgb = [220, 30, 40];
const WHITE = [255, 255, 255];
const SIZE = 128;

let dir: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'dbt-prep-seg-'));
  model = join(dir, 'colour-key.onnx');
  writeFileSync(model, colourKeySegModelBytes({ key: LIME }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let runCounter = 0;
/** Writes the scenes as PNGs into a fresh folder and runs prep with the colour-key model. */
async function prep(scenes: Record<string, Scene>, opts: Partial<PrepOptions> = {}) {
  const id = runCounter++;
  const raw = join(dir, `raw-${id}`);
  mkdirSync(raw);
  for (const [name, scene] of Object.entries(scenes)) writeFileSync(join(raw, `${name}.png`), await encodeImage(renderScene(scene), 'png'));
  const out = join(dir, `out-${id}`);
  const report = await prepImages(withPrepDefaults({ inputs: [raw], out, size: SIZE, whiteBg: true, segModel: model, concurrency: 2, ...opts }));
  const image = async (name: string) => readRaw(join(out, `${name}.png`));
  return { report, image, out };
}

function padBox(scene: Scene, size: number): Box {
  const s = size / Math.max(scene.width, scene.height);
  const b = scene.subject!;
  return { left: (size - scene.width * s) / 2 + b.left * s, top: (size - scene.height * s) / 2 + b.top * s, width: b.width * s, height: b.height * s };
}

function expectBoxNear(actual: Box | null, expected: Box, tol = 1.5): void {
  expect(actual).not.toBeNull();
  const e = (b: Box) => [b.left, b.top, b.left + b.width, b.top + b.height];
  e(actual!).forEach((v, i) => expect(Math.abs(v - e(expected)[i]), `${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`).toBeLessThanOrEqual(tol));
}

/**
 * Every pixel more than `margin` px outside `box` must be exactly `bg`; more than `margin` inside, the
 * subject colour (within the resampling kernel's ringing at a hard edge).
 */
function expectComposite(img: RawImage, box: Box, subject: number[], bg: number[], margin = 3): void {
  let checkedOut = 0;
  let checkedIn = 0;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      const outside = x < box.left - margin || x >= box.left + box.width + margin || y < box.top - margin || y >= box.top + box.height + margin;
      const inside = x >= box.left + margin && x < box.left + box.width - margin && y >= box.top + margin && y < box.top + box.height - margin;
      if (outside) {
        checkedOut++;
        expect(pixel(img, x, y), `background at ${x},${y}`).toEqual(bg);
      } else if (inside) {
        checkedIn++;
        expect(near(pixel(img, x, y), subject, 6), `subject at ${x},${y}: ${pixel(img, x, y)}`).toBe(true);
      }
    }
  }
  expect(checkedOut).toBeGreaterThan(100);
  expect(checkedIn).toBeGreaterThan(100);
}

const dist2 = (a: number[], b: number[]) => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0);
/** Nearer to the subject's red than to white or lime (half-way through an edge blend). */
const isRed = (px: number[]) => dist2(px, RED) < dist2(px, WHITE) && dist2(px, RED) < dist2(px, LIME);

describe('segmentation with --white-bg', () => {
  const wideBig: Scene = { width: 1536, height: 1024, background: LIME, subject: { left: 500, top: 300, width: 400, height: 600, colour: RED } };
  const smallWide: Scene = { width: 96, height: 64, background: LIME, subject: { left: 24, top: 16, width: 40, height: 32, colour: RED } };
  const tallCut: Scene = { width: 200, height: 400, background: LIME, subject: { left: 50, top: 120, width: 100, height: 280, colour: RED } };

  it('pad: the keyed background becomes exactly white, the subject keeps its colour and place', async () => {
    const { report, image } = await prep({ wideBig, smallWide, tallCut });
    expect(report.ok).toBe(true);
    expect(report.counts.processed).toBe(3);
    for (const [name, scene] of Object.entries({ wideBig, smallWide, tallCut })) {
      const img = await image(name);
      expect([img.width, img.height, img.channels]).toEqual([SIZE, SIZE, 3]);
      const want = padBox(scene, SIZE);
      expectBoxNear(bboxWhere(img, isRed), want);
      // This model keys the black canvas around its input as "subject": had prep not cropped that padding
      // off the mask (or misplaced it), lime source pixels would show outside the subject here.
      expectComposite(img, want, RED, WHITE);
    }
    const byName = Object.fromEntries(report.images.map((r) => [r.source.split('/').pop(), r]));
    expect(byName['wideBig.png'].subject).toMatchObject({ from: 'segmentation', framing: 'full-body' });
    expect(byName['tallCut.png'].subject).toMatchObject({ from: 'segmentation', framing: 'bust-up' });
    expectBoxNear(byName['wideBig.png'].subject!.box, padBox(wideBig, SIZE));
    expect(report.framing).toEqual({ fullBody: 2, bustUp: 1, withoutMask: 0 });
  });

  it('subject: crops to the subject box plus margin, then pads', async () => {
    const { image, report } = await prep({ wideBig }, { fit: 'subject', margin: 0.1 });
    const img = await image('wideBig');
    // Box 400×600 + 60 px margin each side → 520×720, scaled by 128/720 and centred.
    const s = SIZE / 720;
    const want = { left: (SIZE - 520 * s) / 2 + 60 * s, top: 60 * s, width: 400 * s, height: 600 * s };
    expectBoxNear(bboxWhere(img, isRed), want);
    expectComposite(img, want, RED, WHITE);
    expect(report.images[0].fit).toBe('subject');
    expect(report.images[0].subject!.fraction).toBeCloseTo((400 * 600) / (720 * 720), 1);
  });

  it('crop: centre square, the mask cut out at source resolution', async () => {
    const { image } = await prep({ wideBig }, { fit: 'crop' });
    const img = await image('wideBig');
    // Centre square of 1024 starts at x = 256; subject 500..900 → 244..644 in the crop, scale 128/1024.
    const s = SIZE / 1024;
    const want = { left: 244 * s, top: 300 * s, width: 400 * s, height: 600 * s };
    expectBoxNear(bboxWhere(img, isRed), want);
    expectComposite(img, want, RED, WHITE);
  });

  it('--bg fills removed background and padding with another colour', async () => {
    const { image } = await prep({ smallWide }, { bg: [10, 20, 30] });
    expectComposite(await image('smallWide'), padBox(smallWide, SIZE), RED, [10, 20, 30]);
  });

  it('--keep-alpha writes the mask as alpha instead of compositing', async () => {
    const { image } = await prep({ smallWide }, { keepAlpha: true });
    const img = await image('smallWide');
    expect(img.channels).toBe(4);
    const want = padBox(smallWide, SIZE);
    expect(pixel(img, 2, 2)[3]).toBe(0); // padding
    expect(pixel(img, Math.round(want.left - 6), SIZE / 2)[3]).toBe(0); // removed background
    const c = pixel(img, Math.round(want.left + want.width / 2), Math.round(want.top + want.height / 2));
    expect(c).toEqual([...RED, 255]);
    expectBoxNear(bboxWhere(img, (px) => px[3] >= 128), want);
  });

  it('--mask-threshold turns a soft mask into a hard one', async () => {
    const soft = join(dir, 'soft.onnx');
    writeFileSync(soft, colourKeySegModelBytes({ key: LIME, gain: 2 })); // background ≈ 0.35, subject ≈ 0.96
    const a = await prep({ smallWide }, { segModel: soft });
    const b = await prep({ smallWide }, { segModel: soft, maskThreshold: 0.5 });
    const want = padBox(smallWide, SIZE);
    const bgA = pixel(await a.image('smallWide'), Math.round(want.left - 6), SIZE / 2);
    expect(near(bgA, WHITE, 10)).toBe(false); // soft mask lets the green through
    expectComposite(await b.image('smallWide'), want, RED, WHITE);
  });

  it('--mask-feather softens the edge over more pixels', async () => {
    const a = await prep({ smallWide });
    const b = await prep({ smallWide }, { maskFeather: 3 });
    const blended = (img: RawImage) => {
      let n = 0;
      for (let x = 0; x < SIZE; x++) {
        const px = pixel(img, x, SIZE / 2);
        if (!near(px, WHITE, 6) && !near(px, RED, 6)) n++;
      }
      return n;
    };
    const [hard, soft] = [blended(await a.image('smallWide')), blended(await b.image('smallWide'))];
    expect(hard).toBeLessThanOrEqual(8);
    expect(soft).toBeGreaterThan(hard + 8);
  });

  it('images that already have transparency use it; the model is not run on them', async () => {
    // A lime subject on transparency: had the colour-key model run, the subject would have vanished.
    const scene: Scene = { ...smallWide, background: 'transparent', subject: { ...smallWide.subject!, colour: LIME } };
    const { image, report } = await prep({ cutout: scene });
    expectComposite(await image('cutout'), padBox(scene, SIZE), LIME, WHITE);
    expect(report.images[0].subject!.from).toBe('alpha');
  });

  it('warns when the subject is small in the frame, and when a mask finds no subject', async () => {
    const tiny: Scene = { width: 400, height: 400, background: LIME, subject: { left: 190, top: 150, width: 20, height: 60, colour: RED } };
    const empty: Scene = { width: 200, height: 200, background: LIME };
    const { report } = await prep({ tiny, empty }, { fit: 'subject', minSubjectFraction: 0.1 });
    const codes = Object.fromEntries(report.images.map((r) => [r.source.split('/').pop(), r.warnings.map((w) => w.code)]));
    expect(codes['empty.png']).toEqual(['no-subject']);
    expect(report.images.find((r) => r.source.endsWith('empty.png'))!.fit).toBe('pad');
    expect(codes['tiny.png']).toEqual([]); // subject framing makes it fill the frame
    const padded = await prep({ tiny }, { minSubjectFraction: 0.1 });
    expect(padded.report.images[0].warnings.map((w) => w.code)).toEqual(['small-subject']);
    expect(padded.report.images[0].subject!.fraction).toBeCloseTo((20 * 60) / (400 * 400), 2);
  });
});

describe('segmentation model problems', () => {
  const scene: Scene = { width: 32, height: 32, background: LIME, subject: { left: 8, top: 8, width: 16, height: 16, colour: RED } };

  it('no model: says where it looked, where to put it and where it is published', async () => {
    const env = { HOME: join(dir, 'home'), XDG_CACHE_HOME: join(dir, 'cache') };
    const raw = join(dir, 'raw-missing');
    mkdirSync(raw, { recursive: true });
    writeFileSync(join(raw, 'a.png'), await encodeImage(renderScene(scene), 'png'));
    const run = (o: Partial<PrepOptions>, e: NodeJS.ProcessEnv) => prepImages(withPrepDefaults({ inputs: [raw], out: join(dir, 'out-missing'), whiteBg: true, ...o }), { env: e });
    const err = await run({}, env).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    const text = `${(err as UsageError).message}\n${(err as UsageError).details.join('\n')}`;
    expect(text).toContain(join(dir, 'cache', 'dbt', 'isnetis.onnx'));
    expect(text).toContain('huggingface.co/skytnt/anime-seg');
    expect(text).toContain('DBT_SEG_MODEL');
    const fromEnv = await run({}, { ...env, DBT_SEG_MODEL: join(dir, 'nowhere.onnx') }).catch((e: unknown) => e);
    expect((fromEnv as Error).message).toContain(`${join(dir, 'nowhere.onnx')} (DBT_SEG_MODEL)`);
    // The environment variable is used when it points at a file.
    const ok = await run({}, { ...env, DBT_SEG_MODEL: model });
    expect(ok.counts.processed).toBe(1);
  });

  it.each([
    ['input name', { inputName: 'input' }, /no input named 'img'/],
    ['output name', { outputName: 'out' }, /no output named 'mask'/],
    ['spatial size', { size: 512 }, /input 'img' has shape \[N,3,512,512\], expected \[N,3,1024,1024\]/],
  ])('a model with the wrong %s is refused with what was expected', async (_what, o, pattern) => {
    const bad = join(dir, `bad-${_what.replace(' ', '-')}.onnx`);
    writeFileSync(bad, colourKeySegModelBytes({ key: LIME, ...o }));
    const raw = join(dir, 'raw-bad');
    mkdirSync(raw, { recursive: true });
    writeFileSync(join(raw, 'a.png'), await encodeImage(renderScene(scene), 'png'));
    const err = await prepImages(withPrepDefaults({ inputs: [raw], out: join(dir, 'out-bad'), whiteBg: true, segModel: bad })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileFormatError);
    expect((err as FileFormatError).details.join('\n')).toMatch(pattern);
  });

  it('a file that is not an ONNX model is refused naming the file', async () => {
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, 'not a model');
    const err = await prepImages(withPrepDefaults({ inputs: [join(dir, 'raw-bad')], out: join(dir, 'out-junk'), whiteBg: true, segModel: junk })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileFormatError);
    expect((err as Error).message).toContain(junk);
  });
});
