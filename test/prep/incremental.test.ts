/** Re-runs, captions, output names, the manifest, and the promise that sources are never touched. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { prepImages, withPrepDefaults, type Manifest, type PrepOptions } from '../../src/prep/index.js';
import { UsageError } from '../../src/errors.js';
import { encodeImage, photoLikeImage, renderScene, sha256, type Scene } from '../helpers/images.js';

let root: string;
let raw: string;
let out: string;

const scene = (colour: [number, number, number]): Scene => ({
  width: 48,
  height: 32,
  background: [20, 30, 40],
  subject: { left: 10, top: 6, width: 20, height: 20, colour },
});

/** Every file under `dir` with its sha256 and mtime: the state sources must keep. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out[relative(dir, p)] = `${sha256(readFileSync(p))} ${st.mtimeMs} ${st.mode}`;
    }
  };
  walk(dir);
  return out;
}

const run = (o: Partial<PrepOptions> = {}) => prepImages(withPrepDefaults({ inputs: [raw], out, size: 64, concurrency: 2, ...o }), { cwd: root });
const statuses = (r: Awaited<ReturnType<typeof run>>) => Object.fromEntries(r.images.map((i) => [i.source.replace('raw/', ''), i.status]));
const manifest = (): Manifest => JSON.parse(readFileSync(join(out, 'prep.json'), 'utf8')) as Manifest;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'dbt-prep-incr-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

beforeEach(async () => {
  rmSync(join(root, 'raw'), { recursive: true, force: true });
  rmSync(join(root, 'data'), { recursive: true, force: true });
  raw = join(root, 'raw');
  out = join(root, 'data', 'nanu');
  mkdirSync(join(raw, 'sub'), { recursive: true });
  writeFileSync(join(raw, 'a.png'), await encodeImage(renderScene(scene([250, 0, 0])), 'png'));
  writeFileSync(join(raw, 'a.txt'), 'nanU Unan, 1girl, red dress\n');
  writeFileSync(join(raw, 'b.jpg'), await encodeImage(renderScene(scene([0, 0, 250])), 'jpeg'));
  writeFileSync(join(raw, 'sub', 'c.webp'), await encodeImage(renderScene(scene([0, 250, 0])), 'webp'));
  writeFileSync(join(raw, 'sub', 'c.caption'), 'green\n');
});

describe('incremental re-runs', () => {
  it('skips unchanged sources, redoes changed ones, and never touches the sources', async () => {
    const before = snapshot(raw);
    const first = await run();
    expect(statuses(first)).toEqual({ 'a.png': 'processed', 'b.jpg': 'processed' });
    const outputsAfterFirst = snapshot(out);

    const second = await run();
    expect(statuses(second)).toEqual({ 'a.png': 'skipped', 'b.jpg': 'skipped' });
    expect(second.counts).toMatchObject({ processed: 0, skipped: 2 });
    expect(snapshot(out)).toEqual(outputsAfterFirst); // not even rewritten

    writeFileSync(join(raw, 'b.jpg'), await encodeImage(renderScene(scene([250, 250, 0])), 'jpeg'));
    expect(statuses(await run())).toEqual({ 'a.png': 'skipped', 'b.jpg': 'processed' });

    expect(statuses(await run({ size: 128 }))).toEqual({ 'a.png': 'processed', 'b.jpg': 'processed' });
    expect(statuses(await run({ size: 128, concurrency: 1, minSubjectFraction: 0.9 }))).toEqual({ 'a.png': 'skipped', 'b.jpg': 'skipped' });
    expect(statuses(await run({ size: 128, force: true }))).toEqual({ 'a.png': 'processed', 'b.jpg': 'processed' });

    writeFileSync(join(raw, 'a.txt'), 'nanU Unan, 1girl, blue dress\n');
    expect(statuses(await run({ size: 128 }))).toEqual({ 'a.png': 'processed', 'b.jpg': 'skipped' });
    expect(readFileSync(join(out, 'a.txt'), 'utf8')).toBe('nanU Unan, 1girl, blue dress\n');

    unlinkSync(join(out, 'b.png'));
    expect(statuses(await run({ size: 128 }))).toEqual({ 'a.png': 'skipped', 'b.jpg': 'processed' });
    writeFileSync(join(out, 'a.png'), 'damaged');
    expect(statuses(await run({ size: 128 }))).toEqual({ 'a.png': 'processed', 'b.jpg': 'skipped' });

    // The sources: same bytes, same mtimes, same modes; no file added next to them.
    const after = snapshot(raw);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    expect(after['a.png']).toBe(before['a.png']);
    expect(after['sub/c.webp']).toBe(before['sub/c.webp']);
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([]); // no temporaries left
  });

  it('the manifest records source and output hashes, options, frame and size', async () => {
    await run({ caption: 'a photo' });
    const m = manifest();
    expect(m.format).toBe('dbt-prep');
    expect(m.images.map((e) => e.output)).toEqual(['a.png', 'b.png']);
    for (const e of m.images) {
      expect(e.sourceSha256).toBe(sha256(readFileSync(join(out, e.source))));
      expect(e.outputSha256).toBe(sha256(readFileSync(join(out, e.output))));
      expect(e.captionSha256).toBe(sha256(readFileSync(join(out, e.caption!))));
      expect(e.options).toMatchObject({ size: 64, fit: 'pad', bg: '#ffffff', whiteBg: false, keepAlpha: false });
      expect(e.sourceImage).toMatchObject({ width: 48, height: 32 });
      expect(e.frame).toMatchObject({ fit: 'pad', target: { width: 64, height: 43 }, place: { left: 0, top: 10 } });
    }
    expect(m.images[0].source).toBe('../../raw/a.png');
  });

  it('a corrupt manifest is reported and everything is redone', async () => {
    await run();
    writeFileSync(join(out, 'prep.json'), '{ not json');
    const r = await run();
    expect(statuses(r)).toEqual({ 'a.png': 'processed', 'b.jpg': 'processed' });
    expect(r.warnings.map((w) => w.code)).toContain('manifest-unreadable');
    expect(manifest().images).toHaveLength(2);
  });

  it('outputs of sources no longer given are kept and reported as stale', async () => {
    await run();
    rmSync(join(raw, 'b.jpg'));
    const r = await run();
    expect(statuses(r)).toEqual({ 'a.png': 'skipped' });
    expect(r.warnings.find((w) => w.code === 'stale')?.message).toMatch(/1 output.*b\.png/);
    expect(existsSync(join(out, 'b.png'))).toBe(true);
    expect(manifest().images.map((e) => e.output)).toEqual(['a.png', 'b.png']);
  });
});

describe('captions', () => {
  it('copies name.txt / name.caption, writes --caption elsewhere, puts --caption-prefix first', async () => {
    await run({ recursive: true, caption: 'a photo', captionPrefix: 'nanU Unan,' });
    expect(readFileSync(join(out, 'a.txt'), 'utf8')).toBe('nanU Unan, nanU Unan, 1girl, red dress\n');
    expect(readFileSync(join(out, 'b.txt'), 'utf8')).toBe('nanU Unan, a photo\n');
    expect(readFileSync(join(out, 'c.txt'), 'utf8')).toBe('nanU Unan, green\n');
  });

  it('writes no caption file when there is no caption, and removes ours when the caption goes away', async () => {
    await run({ caption: 'a photo' });
    expect(existsSync(join(out, 'b.txt'))).toBe(true);
    const r = await run();
    expect(statuses(r)).toEqual({ 'a.png': 'skipped', 'b.jpg': 'processed' });
    expect(existsSync(join(out, 'b.txt'))).toBe(false);
    expect(r.images.find((i) => i.source.endsWith('b.jpg'))!.caption).toBeNull();
  });
});

describe('inputs and output names', () => {
  it('--recursive reads sub-folders; without it they are left alone', async () => {
    expect(Object.keys(statuses(await run()))).toEqual(['a.png', 'b.jpg']);
    expect(Object.keys(statuses(await run({ recursive: true })))).toEqual(['a.png', 'b.jpg', 'sub/c.webp']);
  });

  it('resolves name collisions deterministically and keeps names stable across runs', async () => {
    writeFileSync(join(raw, 'sub', 'a.jpg'), await encodeImage(renderScene(scene([9, 9, 9])), 'jpeg'));
    writeFileSync(join(raw, 'a.jpg'), await encodeImage(renderScene(scene([99, 9, 9])), 'jpeg'));
    const names = (r: Awaited<ReturnType<typeof run>>) => Object.fromEntries(r.images.map((i) => [i.source.replace('raw/', ''), i.output.replace('data/nanu/', '')]));
    const first = names(await run({ recursive: true }));
    expect(first).toEqual({ 'a.jpg': 'a.png', 'a.png': 'a-2.png', 'b.jpg': 'b.png', 'sub/a.jpg': 'a-3.png', 'sub/c.webp': 'c.png' });
    // a.gif sorts before all of them, but existing outputs keep their names.
    writeFileSync(join(raw, 'a.gif'), await encodeImage(renderScene(scene([9, 99, 9])), 'gif'));
    const second = names(await run({ recursive: true }));
    expect(second).toEqual({ ...first, 'a.gif': 'a-4.png' });
  });

  it('follows symlinked folders once: a link back to the input folder is no loop', async () => {
    symlinkSync(raw, join(raw, 'sub', 'loop'));
    expect(Object.keys(statuses(await run({ recursive: true })))).toEqual(['a.png', 'b.jpg', 'sub/c.webp']);
  });

  it('accepts files as inputs, next to folders', async () => {
    const r = await prepImages(withPrepDefaults({ inputs: [join(raw, 'b.jpg'), join(raw, 'sub')], out, size: 64 }), { cwd: root });
    expect(Object.keys(statuses(r))).toEqual(['b.jpg', 'sub/c.webp']);
  });

  it.each([
    ['the output folder is the input folder', () => ({ inputs: [raw], out: raw }), /is the input folder/],
    ['the output folder is inside a recursive input', () => ({ inputs: [raw], out: join(raw, 'sub', 'out'), recursive: true }), /inside the input folder/],
    ['an input file is inside the output folder', () => ({ inputs: [join(raw, 'a.png')], out: raw }), /inside the output folder/],
    ['an input does not exist', () => ({ inputs: [join(raw, 'nope')], out }), /input not found/],
    ['the size is not a multiple of 64', () => ({ inputs: [raw], out, size: 500 }), /multiple of 64/],
  ])('refuses when %s', async (_what, make, pattern) => {
    const before = snapshot(raw);
    const err = await prepImages(withPrepDefaults(make() as PrepOptions), { cwd: root }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(pattern);
    expect(snapshot(raw)).toEqual(before);
  });

  it('an output folder inside a non-recursive input folder is fine (it is not read back)', async () => {
    const r = await prepImages(withPrepDefaults({ inputs: [raw], out: join(raw, 'prepared'), size: 64 }), { cwd: root });
    expect(r.counts.processed).toBe(2);
    expect((await prepImages(withPrepDefaults({ inputs: [raw], out: join(raw, 'prepared'), size: 64 }), { cwd: root })).counts.skipped).toBe(2);
  });
});

describe('report', () => {
  it('flags near-duplicates (re-encoded, resized, brightened) but not different pictures', async () => {
    const dup = join(root, 'dups');
    rmSync(dup, { recursive: true, force: true });
    mkdirSync(dup);
    const photo = photoLikeImage(160, 120, 42);
    writeFileSync(join(dup, 'original.png'), await encodeImage(photo, 'png'));
    writeFileSync(join(dup, 'reencoded.jpg'), await encodeImage(photo, 'jpeg'));
    const brighter = { ...photo, data: Buffer.from(photo.data.map((v) => Math.min(255, v + 12))) };
    writeFileSync(join(dup, 'brighter.webp'), await encodeImage(brighter, 'webp'));
    for (const seed of [1, 2, 3]) writeFileSync(join(dup, `other-${seed}.png`), await encodeImage(photoLikeImage(160, 120, seed), 'png'));
    const r = await prepImages(withPrepDefaults({ inputs: [dup], out: join(root, 'dups-out'), size: 64 }), { cwd: root });
    const pairs = r.nearDuplicates.map((d) => [d.a, d.b].map((s) => s.replace('dups/', '')).sort().join(' ~ ')).sort();
    expect(pairs).toEqual(['brighter.webp ~ original.png', 'brighter.webp ~ reencoded.jpg', 'original.png ~ reencoded.jpg']);
    const grouped = r.warnings.filter((w) => w.code === 'near-duplicate');
    expect(grouped).toHaveLength(1); // one warning for the group of three
    expect(grouped[0].source).toBe('dups/brighter.webp');
    expect(grouped[0].message).toMatch(/looks almost the same as dups\/original\.png, dups\/reencoded\.jpg/);
  });
});
