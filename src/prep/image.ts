/**
 * One image through sharp: probe, subject mask from transparency, segmentation input, and the framed,
 * composited output square. Full-resolution pixels never pass through JavaScript: sharp decodes (with
 * shrink-on-load), crops and resizes; JS only touches masks at ≤1024² and the output square.
 */
import sharp, { type Metadata, type Sharp } from 'sharp';
import type { Frame, Rect } from './geometry.js';
import { isWhole } from './geometry.js';
import type { Rgb } from './options.js';
import { PHASH_INPUT, phashFromGrey } from './phash.js';
import { SEG_INPUT_SIZE } from './segment.js';

/** Work on thousands of different files: sharp's operation cache only costs memory. */
sharp.cache(false);

/** A failure of one source file; `message` is the one-line reason shown to the user. */
export class ImageError extends Error {
  constructor(
    message: string,
    /** The file is not an image at all (unsupported format), as opposed to a broken one. */
    readonly notAnImage = false,
    /** The decoder failed without saying why (see diagnoseDecodeFailure). */
    readonly unexplained = false,
  ) {
    super(message);
  }
}

export interface SourceInfo {
  format: string;
  /** Upright size (EXIF orientation applied). */
  width: number;
  height: number;
  orientation: number;
  pages: number;
  hasAlpha: boolean;
  space: string;
  depth: string;
}

export interface Mask {
  /** 8-bit, one channel, 255 = subject; covers the whole upright source at a reduced size. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface RawPixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 3 | 4;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0].trim();
}

/** sharp errors as the user should read them. */
export function describeDecodeError(err: unknown): ImageError {
  if (err instanceof ImageError) return err;
  const msg = firstLine(err);
  if (/unsupported image format/i.test(msg)) return new ImageError('not a recognised image format', true);
  // libvips keeps one error buffer for all threads: with several images in flight another operation can
  // clear it before sharp reads it, and the failure arrives as "Unknown error".
  if (!msg || /^unknown error$/i.test(msg)) return new ImageError('cannot decode image (the decoder gave no reason)', false, true);
  if (/pixel limit/i.test(msg)) return new ImageError(`image too large (${msg})`);
  if (/premature end|truncat|read error|corrupt|invalid|bad |unexpected end|not enough data/i.test(msg)) {
    return new ImageError(`truncated or corrupt image (${msg})`);
  }
  return new ImageError(`cannot decode image (${msg})`);
}

/** JPEG without its end-of-image marker, PNG without its IEND chunk: the file was cut short. */
function looksTruncated(buf: Buffer): string | null {
  const tail = buf.subarray(Math.max(0, buf.length - 64));
  if (buf[0] === 0xff && buf[1] === 0xd8 && tail.lastIndexOf(Buffer.from([0xff, 0xd9])) < 0) return 'JPEG ends before its end-of-image marker';
  if (buf.subarray(1, 4).toString('latin1') === 'PNG' && tail.lastIndexOf(Buffer.from('IEND', 'latin1')) < 0) return 'PNG ends before its IEND chunk';
  return null;
}

/** The reason a decode failed, when the first attempt lost it: decode again, then look at the file's structure. */
export async function diagnoseDecodeFailure(buf: Buffer, maxPixels: number): Promise<ImageError> {
  try {
    await open(buf, maxPixels).raw().toBuffer();
  } catch (err) {
    const e = describeDecodeError(err);
    if (!e.unexplained) return e;
  }
  const cut = looksTruncated(buf);
  if (cut) return new ImageError(`truncated or corrupt image (${cut})`);
  return new ImageError('cannot decode image (the decoder gave no reason)');
}

function open(buf: Buffer, maxPixels: number): Sharp {
  // failOn 'error': truncated and corrupt files fail instead of decoding to grey; EXIF orientation first.
  return sharp(buf, { failOn: 'error', limitInputPixels: maxPixels, autoOrient: true });
}

/** Reads the header only. Refuses files over `maxPixels` before anything is decoded. */
export async function probeImage(buf: Buffer, maxPixels: number): Promise<SourceInfo> {
  let meta: Metadata;
  try {
    // Header only: no pixel limit here, so an oversized file gets our message (with the limit) below.
    meta = await sharp(buf, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw describeDecodeError(err);
  }
  if (!meta.width || !meta.height || !meta.format) throw new ImageError('not a recognised image format', true);
  const orientation = meta.orientation ?? 1;
  const swap = orientation >= 5;
  const pixels = meta.width * meta.height;
  if (pixels > maxPixels) {
    throw new ImageError(
      `${meta.width}×${meta.height} (${(pixels / 1e6).toFixed(1)} megapixels) is over the --max-pixels limit of ${maxPixels}; raise --max-pixels if you trust this file`,
    );
  }
  return {
    format: meta.format,
    width: swap ? meta.height : meta.width,
    height: swap ? meta.width : meta.height,
    orientation,
    pages: meta.pages ?? 1,
    hasAlpha: !!meta.hasAlpha,
    space: meta.space ?? 'unknown',
    depth: meta.depth ?? 'unknown',
  };
}

/** The source's transparency as a subject mask (long side ≤ 1024), or null when it is fully opaque. */
export async function alphaMask(buf: Buffer, maxPixels: number): Promise<Mask | null> {
  const { data, info } = await open(buf, maxPixels)
    .resize(SEG_INPUT_SIZE, SEG_INPUT_SIZE, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((err: unknown) => {
      throw describeDecodeError(err);
    });
  const n = info.width * info.height;
  const mask = new Uint8Array(n);
  let opaque = true;
  for (let i = 0, j = info.channels - 1; i < n; i++, j += info.channels) {
    mask[i] = data[j];
    if (data[j] !== 255) opaque = false;
  }
  return opaque ? null : { data: mask, width: info.width, height: info.height };
}

/** The model's input picture: upright RGB resized so its long side is exactly 1024. */
export async function segmentationInput(buf: Buffer, maxPixels: number): Promise<RawPixels> {
  const { data, info } = await open(buf, maxPixels)
    .resize(SEG_INPUT_SIZE, SEG_INPUT_SIZE, { fit: 'inside' })
    .toColourspace('srgb')
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true })
    .catch((err: unknown) => {
      throw describeDecodeError(err);
    });
  return { data, width: info.width, height: info.height, channels: 3 };
}

/** Sets every mask value to 0 or 255 at `threshold` (0–1). */
export function thresholdMask(mask: Mask, threshold: number): Mask {
  const t = threshold * 255;
  return { ...mask, data: mask.data.map((v) => (v >= t ? 255 : 0)) };
}

/** The mask over `frame.crop`, resized to the frame's target size, optionally feathered. */
async function maskForFrame(mask: Mask, width: number, height: number, frame: Frame, feather: number): Promise<Uint8Array> {
  // toColourspace('b-w') keeps one band: sharp would otherwise write a one-band image out as sRGB.
  const raw = (d: Uint8Array, w: number, h: number) => sharp(d, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w');
  let s: Sharp;
  const { width: tw, height: th } = frame.target;
  if (isWhole(frame.crop, width, height)) {
    s = raw(mask.data, mask.width, mask.height).resize(tw, th, { fit: 'fill', kernel: 'linear' });
  } else {
    // Bring the mask to source resolution first so the crop is exact, then to the target.
    const full = await raw(mask.data, mask.width, mask.height).resize(width, height, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
    s = raw(full, width, height).extract(frame.crop).resize(tw, th, { fit: 'fill', kernel: 'linear' });
  }
  if (feather > 0) s = s.blur(Math.max(0.3, feather));
  const { data, info } = await s.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 || info.width !== tw || info.height !== th) throw new Error(`mask resize gave ${info.width}×${info.height}×${info.channels}`);
  return data;
}

export interface RenderRequest {
  buf: Buffer;
  info: SourceInfo;
  frame: Frame;
  bg: Rgb;
  keepAlpha: boolean;
  /** Where transparency comes from: none (opaque source), the source's alpha, or a segmentation mask. */
  alpha: 'none' | 'image' | 'mask';
  mask?: Mask;
  feather: number;
  maxPixels: number;
}

/** The output square as raw pixels: RGB composited onto `bg`, or RGBA with `keepAlpha`. */
export async function renderFrame(r: RenderRequest): Promise<RawPixels> {
  const { frame, bg } = r;
  const { size } = frame;
  const { width: tw, height: th } = frame.target;
  let s = open(r.buf, r.maxPixels);
  if (!isWhole(frame.crop, r.info.width, r.info.height)) s = s.extract(frame.crop);
  s = s.resize(tw, th, { fit: 'fill' }).toColourspace('srgb');
  const fail = (err: unknown): never => {
    throw describeDecodeError(err);
  };

  if (r.alpha !== 'mask') {
    const extend = {
      top: frame.place.top,
      left: frame.place.left,
      bottom: size - th - frame.place.top,
      right: size - tw - frame.place.left,
    };
    const [red, green, blue] = bg;
    if (r.keepAlpha) {
      s = s.ensureAlpha().extend({ ...extend, background: { r: red, g: green, b: blue, alpha: 0 } });
    } else {
      s = s.extend({ ...extend, background: { r: red, g: green, b: blue, alpha: 1 } }).flatten({ background: { r: red, g: green, b: blue } }).removeAlpha();
    }
    const { data, info } = await s.raw().toBuffer({ resolveWithObject: true }).catch(fail);
    const channels = r.keepAlpha ? 4 : 3;
    if (info.width !== size || info.height !== size || info.channels !== channels) {
      throw new Error(`render gave ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×${channels}`);
    }
    return { data, width: size, height: size, channels };
  }

  // Segmentation mask: rgb·m + bg·(1−m) at output resolution, written straight into the square.
  if (!r.mask) throw new Error('mask compositing needs a mask');
  const [rgb, m] = await Promise.all([
    s.removeAlpha().raw().toBuffer().catch(fail),
    maskForFrame(r.mask, r.info.width, r.info.height, frame, r.feather),
  ]);
  const channels = r.keepAlpha ? 4 : 3;
  const out = Buffer.alloc(size * size * channels);
  if (!r.keepAlpha) for (let i = 0; i < size * size; i++) out.set(bg, i * 3);
  else for (let i = 0; i < size * size; i++) out.set(bg, i * 4); // transparent pixels keep the bg colour
  for (let y = 0; y < th; y++) {
    let src = y * tw;
    let dst = ((y + frame.place.top) * size + frame.place.left) * channels;
    for (let x = 0; x < tw; x++, src++, dst += channels) {
      const a = m[src];
      const p = src * 3;
      if (r.keepAlpha) {
        out[dst] = rgb[p];
        out[dst + 1] = rgb[p + 1];
        out[dst + 2] = rgb[p + 2];
        out[dst + 3] = a;
      } else {
        const b = 255 - a;
        out[dst] = Math.round((rgb[p] * a + bg[0] * b) / 255);
        out[dst + 1] = Math.round((rgb[p + 1] * a + bg[1] * b) / 255);
        out[dst + 2] = Math.round((rgb[p + 2] * a + bg[2] * b) / 255);
      }
    }
  }
  return { data: out, width: size, height: size, channels };
}

function fromRaw(p: RawPixels): Sharp {
  return sharp(p.data, { raw: { width: p.width, height: p.height, channels: p.channels } });
}

export async function encodePng(p: RawPixels): Promise<Buffer> {
  // Level 3: the same size as the default 6 on photos at 512², in three quarters of the time.
  return fromRaw(p).png({ compressionLevel: 3 }).toBuffer();
}

/** Perceptual hash of the output as seen on `bg` (transparent outputs are flattened first). */
export async function phashOf(p: RawPixels, bg: Rgb): Promise<string> {
  let s = fromRaw(p);
  if (p.channels === 4) s = s.flatten({ background: { r: bg[0], g: bg[1], b: bg[2] } });
  const grey = await s.resize(PHASH_INPUT, PHASH_INPUT, { fit: 'fill' }).greyscale().raw().toBuffer();
  if (grey.length !== PHASH_INPUT * PHASH_INPUT) throw new Error(`phash thumbnail has ${grey.length} bytes`);
  return phashFromGrey(grey);
}

export type { Rect };
