/**
 * Image fixtures made by the tests themselves: scenes drawn into raw pixel buffers, encoded with sharp in
 * every format and depth prep must read, plus broken files. Nothing here is downloaded.
 *
 * Imports only sharp and node built-ins: bench scripts transpile and load this file as plain JS.
 */
import sharp, { type Sharp } from 'sharp';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type Rgb = [number, number, number];

/** Raw interleaved 8-bit pixels. */
export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

export interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface Scene {
  width: number;
  height: number;
  /** Solid background, or transparent (RGBA output with alpha 0 outside the subject). */
  background: Rgb | 'transparent';
  /** A solid-coloured rectangle or ellipse: the "character" a mask should find. */
  subject?: Box & { colour: Rgb; shape?: 'rect' | 'ellipse' };
  /** Adds deterministic noise of this amplitude (0–255) to the subject's pixels, so they are not flat. */
  texture?: { amplitude: number; seed: number };
}

/** Deterministic PRNG (mulberry32) so fixtures are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function inSubject(s: NonNullable<Scene['subject']>, x: number, y: number): boolean {
  if (x < s.left || y < s.top || x >= s.left + s.width || y >= s.top + s.height) return false;
  if (s.shape !== 'ellipse') return true;
  const rx = s.width / 2;
  const ry = s.height / 2;
  const dx = (x + 0.5 - (s.left + rx)) / rx;
  const dy = (y + 0.5 - (s.top + ry)) / ry;
  return dx * dx + dy * dy <= 1;
}

export function renderScene(scene: Scene): RawImage {
  const transparent = scene.background === 'transparent';
  const channels = transparent ? 4 : 3;
  const { width, height, subject } = scene;
  const data = Buffer.alloc(width * height * channels);
  const bg: Rgb = transparent ? [0, 0, 0] : (scene.background as Rgb);
  const rand = prng(scene.texture?.seed ?? 1);
  const amp = scene.texture?.amplitude ?? 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * channels;
      const inside = subject !== undefined && inSubject(subject, x, y);
      const c = inside ? subject!.colour : bg;
      for (let k = 0; k < 3; k++) {
        const n = inside && amp ? Math.round((rand() - 0.5) * amp) : 0;
        data[i + k] = Math.max(0, Math.min(255, c[k] + n));
      }
      if (transparent) data[i + 3] = inside ? 255 : 0;
    }
  }
  return { data, width, height, channels };
}

/** Uniform noise: distinct, incompressible content (for near-duplicate tests and heavy decodes). */
export function noiseImage(width: number, height: number, seed: number): RawImage {
  const rand = prng(seed);
  const data = Buffer.alloc(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rand() * 256);
  return { data, width, height, channels: 3 };
}

/**
 * Smooth photo-like content: gradients plus a few soft blobs, different per seed. Compresses like a
 * photograph (a 2000×3000 JPEG is ~1 MB), unlike noise.
 */
export function photoLikeImage(width: number, height: number, seed: number): RawImage {
  const rand = prng(seed);
  const blobs = Array.from({ length: 6 }, () => ({
    x: rand() * width,
    y: rand() * height,
    r: (0.05 + rand() * 0.25) * Math.min(width, height),
    c: [rand() * 255, rand() * 255, rand() * 255],
  }));
  const base = [rand() * 255, rand() * 255, rand() * 255];
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    const fy = y / height;
    for (let x = 0; x < width; x++) {
      const fx = x / width;
      let r = base[0] * (1 - fy) + 40 * fx;
      let g = base[1] * fy + 30 * (1 - fx);
      let b = base[2] * (0.5 + 0.5 * fx * fy);
      for (const bl of blobs) {
        const dx = x - bl.x;
        const dy = y - bl.y;
        const d2 = dx * dx + dy * dy;
        if (d2 < bl.r * bl.r) {
          const w = 1 - d2 / (bl.r * bl.r);
          r += (bl.c[0] - r) * w;
          g += (bl.c[1] - g) * w;
          b += (bl.c[2] - b) * w;
        }
      }
      const i = (y * width + x) * 3;
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
    }
  }
  return { data, width, height, channels: 3 };
}

export type FixtureFormat =
  | 'png'
  | 'png16'
  | 'png-palette'
  | 'gray'
  | 'gray16'
  | 'gray-alpha'
  | 'jpeg'
  | 'jpeg-cmyk'
  | 'webp'
  | 'avif'
  | 'tiff'
  | 'gif'
  | 'gif-animated';

function fromRaw(img: RawImage): Sharp {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } });
}

/** Encodes raw pixels in one of the formats prep must read. */
export async function encodeImage(img: RawImage, format: FixtureFormat): Promise<Buffer> {
  const s = fromRaw(img);
  switch (format) {
    case 'png':
      return s.png().toBuffer();
    case 'png16':
      return s.toColourspace('rgb16').png().toBuffer();
    case 'png-palette':
      // With an alpha channel this is a palette PNG with a tRNS chunk.
      return s.png({ palette: true, colours: 64, dither: 0 }).toBuffer();
    case 'gray':
      return s.removeAlpha().toColourspace('b-w').png().toBuffer();
    case 'gray16':
      return s.removeAlpha().toColourspace('grey16').png().toBuffer();
    case 'gray-alpha':
      return s.ensureAlpha().toColourspace('b-w').png().toBuffer();
    case 'jpeg':
      return s.removeAlpha().jpeg({ quality: 92 }).toBuffer();
    case 'jpeg-cmyk':
      return s.removeAlpha().toColourspace('cmyk').jpeg({ quality: 92 }).toBuffer();
    case 'webp':
      return s.webp({ lossless: true }).toBuffer();
    case 'avif':
      return s.avif({ lossless: true, effort: 0 }).toBuffer();
    case 'tiff':
      return s.tiff().toBuffer();
    case 'gif':
      return s.gif().toBuffer();
    case 'gif-animated': {
      // First frame is the image; the second is solid magenta, which prep must never show.
      const first = await fromRaw(img).png().toBuffer();
      const second = await sharp({
        create: { width: img.width, height: img.height, channels: 3, background: { r: 255, g: 0, b: 255 } },
      })
        .png()
        .toBuffer();
      return sharp([first, second], { join: { animated: true } }).gif().toBuffer();
    }
  }
}

/**
 * A JPEG whose stored pixels are transformed so that applying its EXIF orientation shows `upright`.
 * Orientation 3: viewer rotates 180°; 6: viewer rotates 90° clockwise; 8: 90° anticlockwise; 2: mirror.
 */
export async function exifOrientedJpeg(upright: RawImage, orientation: 2 | 3 | 6 | 8): Promise<Buffer> {
  let s = fromRaw(upright).removeAlpha();
  if (orientation === 2) s = s.flop();
  else if (orientation === 3) s = s.rotate(180);
  else if (orientation === 6) s = s.rotate(270);
  else s = s.rotate(90);
  const stored = await s.raw().toBuffer({ resolveWithObject: true });
  return sharp(stored.data, { raw: { width: stored.info.width, height: stored.info.height, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation })
    .toBuffer();
}

/** The first `fraction` of a file: a truncated image. */
export function truncated(file: Buffer, fraction = 0.6): Buffer {
  return file.subarray(0, Math.floor(file.length * fraction));
}

export const NOT_AN_IMAGE = Buffer.from('this is a text file that merely has an image extension\n');

/** Decodes any image file to raw 8-bit pixels (as stored: no colour or orientation changes). */
export async function readRaw(file: string | Buffer): Promise<RawImage> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels as RawImage['channels'] };
}

export function pixel(img: RawImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * img.channels;
  return Array.from(img.data.subarray(i, i + img.channels));
}

/** Bounding box of the pixels for which `isSubject` holds, or null when there are none. */
export function bboxWhere(img: RawImage, isSubject: (px: number[]) => boolean): Box | null {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (!isSubject(pixel(img, x, y))) continue;
      if (x < x0) x0 = x;
      if (y < y0) y0 = y;
      if (x > x1) x1 = x;
      if (y > y1) y1 = y;
    }
  }
  return x1 < 0 ? null : { left: x0, top: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** Per-channel distance is at most `tol`. */
export function near(px: number[], colour: number[], tol: number): boolean {
  return colour.every((c, k) => Math.abs(px[k] - c) <= tol);
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256')
    .update(typeof data === 'string' ? readFileSync(data) : data)
    .digest('hex');
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Buffer): number {
  let c = 0xffffffff;
  for (const v of b) c = CRC_TABLE[(c ^ v) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/**
 * A decompression bomb's header: a PNG declaring `width`×`height` RGB pixels with almost no data after it.
 * Anything that decodes it before checking the size would try to allocate width·height·3 bytes.
 */
export function pngBombHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
