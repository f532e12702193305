/** Pure parts of prep: framing geometry, mask boxes, perceptual hash, colours, captions, output names. */
import { describe, expect, it } from 'vitest';
import { boxInOutput, classifyFraming, computeFrame, maskBox, scaleBox, type Rect } from '../../src/prep/geometry.js';
import { findNearDuplicates, groupNearDuplicates, hammingDistance, phashFromGrey } from '../../src/prep/phash.js';
import { parseColour } from '../../src/prep/options.js';
import { composeCaption } from '../../src/prep/captions.js';
import { assignOutputNames } from '../../src/prep/sources.js';
import { prng } from '../helpers/images.js';

describe('computeFrame', () => {
  it.each<[string, Parameters<typeof computeFrame>, object]>([
    ['pad, tall', ['pad', 2000, 3000, 512, null, 0], { crop: { left: 0, top: 0, width: 2000, height: 3000 }, target: { width: 341, height: 512 }, place: { left: 85, top: 0 } }],
    ['pad, wide', ['pad', 300, 200, 512, null, 0], { target: { width: 512, height: 341 }, place: { left: 0, top: 85 } }],
    ['pad, square', ['pad', 700, 700, 512, null, 0], { target: { width: 512, height: 512 }, place: { left: 0, top: 0 } }],
    ['pad, extreme strip', ['pad', 5000, 3, 64, null, 0], { target: { width: 64, height: 1 }, place: { left: 0, top: 31 } }],
    ['crop, tall', ['crop', 2000, 3000, 512, null, 0], { crop: { left: 0, top: 500, width: 2000, height: 2000 }, target: { width: 512, height: 512 }, place: { left: 0, top: 0 } }],
    ['crop, wide odd', ['crop', 301, 200, 512, null, 0], { crop: { left: 50, top: 0, width: 200, height: 200 } }],
    [
      'subject with margin',
      ['subject', 1000, 1000, 512, { left: 400, top: 100, width: 200, height: 400 }, 0.1],
      { crop: { left: 360, top: 60, width: 280, height: 480 }, target: { width: 299, height: 512 }, place: { left: 106, top: 0 } },
    ],
    [
      'subject, margin clipped at the image edge',
      ['subject', 1000, 800, 256, { left: 0, top: 600, width: 300, height: 200 }, 0.2],
      { crop: { left: 0, top: 540, width: 360, height: 260 } },
    ],
  ])('%s', (_name, args, expected) => {
    expect(computeFrame(...args)).toMatchObject(expected);
  });

  it('subject framing without a subject box is a programming error', () => {
    expect(() => computeFrame('subject', 10, 10, 64, null, 0)).toThrow(/needs a subject box/);
  });
});

describe('mask boxes', () => {
  it('finds the box of values at or above the threshold', () => {
    const w = 10;
    const h = 8;
    const m = new Uint8Array(w * h);
    m[2 * w + 3] = 200;
    m[5 * w + 7] = 128;
    m[6 * w + 1] = 127; // below threshold
    expect(maskBox(m, w, h)).toEqual({ left: 3, top: 2, width: 5, height: 4 });
    expect(maskBox(new Uint8Array(w * h), w, h)).toBeNull();
  });

  it('scales a mask box to the source, rounding outwards', () => {
    expect(scaleBox({ left: 10, top: 20, width: 5, height: 5 }, 100, 100, 1000, 333)).toEqual({ left: 100, top: 66, width: 50, height: 18 });
    expect(scaleBox({ left: 0, top: 0, width: 100, height: 100 }, 100, 100, 250, 250)).toEqual({ left: 0, top: 0, width: 250, height: 250 });
  });

  it('maps a source box into the output square', () => {
    const f = computeFrame('pad', 200, 100, 100, null, 0); // scale 0.5, placed at top 25
    expect(boxInOutput({ left: 20, top: 10, width: 40, height: 60 }, f)).toEqual({ left: 10, top: 30, width: 20, height: 30 });
  });

  it.each<[Rect, number, string]>([
    [{ left: 0, top: 10, width: 50, height: 80 }, 100, 'full-body'],
    [{ left: 0, top: 10, width: 50, height: 90 }, 100, 'bust-up'],
    [{ left: 0, top: 0, width: 50, height: 99 }, 100, 'bust-up'],
  ])('framing of %j in a source %i high: %s', (box, h, want) => {
    expect(classifyFraming(box, h)).toBe(want);
  });
});

describe('perceptual hash', () => {
  const grey = (seed: number, f: (x: number, y: number, r: () => number) => number) => {
    const r = prng(seed);
    return Uint8Array.from({ length: 32 * 32 }, (_, i) => Math.max(0, Math.min(255, Math.round(f(i % 32, Math.floor(i / 32), r)))));
  };
  /** A smooth picture: a few random low-frequency waves (what a 32×32 thumbnail of a photo looks like). */
  const pattern = (seed: number) => {
    const r = prng(seed);
    const waves = Array.from({ length: 5 }, () => [r() * 0.5, r() * 0.5, r() * 6, r() * 40]);
    return (x: number, y: number) => 128 + waves.reduce((s, [fx, fy, p, a]) => s + a * Math.cos(fx * x + fy * y + p), 0);
  };

  it('is stable under noise and brightness changes, and tells different pictures apart', () => {
    const base = pattern(1);
    const h = phashFromGrey(grey(0, base));
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(hammingDistance(h, phashFromGrey(grey(0, (x, y) => base(x, y) + 15)))).toBe(0); // brightness: DC only
    for (let s = 0; s < 5; s++) expect(hammingDistance(h, phashFromGrey(grey(100 + s, (x, y, r) => base(x, y) + (r() - 0.5) * 16)))).toBeLessThanOrEqual(8);
    for (let s = 2; s < 22; s++) expect(hammingDistance(h, phashFromGrey(grey(0, pattern(s))))).toBeGreaterThan(16);
  });

  it('hamming distance and pairing', () => {
    expect(hammingDistance('0000000000000000', 'ffffffffffffffff')).toBe(64);
    expect(hammingDistance('00000000000000f0', '0000000000000010')).toBe(3);
    const items = [
      { id: 'a', phash: '0000000000000000' },
      { id: 'b', phash: '00000000000000ff' },
      { id: 'c', phash: 'ffffffffffffffff' },
      { id: 'd', phash: '0000000000000001' },
    ];
    expect(findNearDuplicates(items)).toEqual([
      { a: 'a', b: 'b', distance: 8 },
      { a: 'a', b: 'd', distance: 1 },
      { a: 'b', b: 'd', distance: 7 },
    ]);
    expect(groupNearDuplicates([...findNearDuplicates(items), { a: 'x', b: 'y', distance: 2 }])).toEqual([
      { members: ['a', 'b', 'd'], maxDistance: 8 },
      { members: ['x', 'y'], maxDistance: 2 },
    ]);
  });
});

describe('colours, captions, names', () => {
  it.each<[string, number[]]>([
    ['white', [255, 255, 255]],
    [' BLACK ', [0, 0, 0]],
    ['#abc', [0xaa, 0xbb, 0xcc]],
    ['#102030', [16, 32, 48]],
    ['rgb(1,2,3)', [1, 2, 3]],
    ['4, 5, 6', [4, 5, 6]],
  ])('parseColour(%j)', (text, rgb) => {
    expect(parseColour(text)).toEqual(rgb);
  });

  it.each(['', 'whiteish', '#ab', 'rgb(1,2)', '256,0,0', 'rgb(1,2,3', '#gggggg'])('parseColour(%j) is refused', (text) => {
    expect(() => parseColour(text)).toThrow(/not a colour/);
  });

  it.each<[string | null, { caption?: string; captionPrefix?: string }, string | null]>([
    [null, {}, null],
    ['own words', {}, 'own words'],
    ['own words', { caption: 'ignored' }, 'own words'],
    [null, { caption: 'a photo' }, 'a photo'],
    [null, { captionPrefix: 'nanU Unan' }, 'nanU Unan'],
    ['1girl, solo', { captionPrefix: 'nanU Unan, ' }, 'nanU Unan, 1girl, solo'],
    ['  ', { caption: 'x' }, null],
  ])('composeCaption(%j, %j)', (own, opts, want) => {
    expect(composeCaption(own, opts)).toBe(want);
  });

  it('assigns names: previous first, then stems in order, images before other files, case-insensitively', () => {
    const names = assignOutputNames(
      ['/r/A.png', '/r/a.jpg', '/r/b.md', '/r/b.webp', '/r/s/c.png', '/r/x.png'],
      new Map([['/r/x.png', 'c.png']]),
      ['a.png'],
    );
    expect(Object.fromEntries(names)).toEqual({
      '/r/x.png': 'c.png',
      '/r/A.png': 'A-2.png',
      '/r/a.jpg': 'a-3.png',
      '/r/b.webp': 'b.png',
      '/r/s/c.png': 'c-2.png',
      '/r/b.md': 'b-2.png',
    });
  });
});
