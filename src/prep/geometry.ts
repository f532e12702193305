import type { Fit } from './options.js';

/** Integer pixel rectangle. */
export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Where a source lands in the output square: `crop` (in the upright source's pixels) is resized to
 * `target` and placed at `place` inside a `size`×`size` canvas filled with the background.
 */
export interface Frame {
  fit: Fit;
  size: number;
  crop: Rect;
  target: { width: number; height: number };
  place: { left: number; top: number };
  /** Resize factor (target / crop, the larger of the two axes). */
  scale: number;
}

export function isWhole(r: Rect, width: number, height: number): boolean {
  return r.left === 0 && r.top === 0 && r.width === width && r.height === height;
}

/** Scale `crop` to fit inside the square keeping its aspect ratio; centre it (the figure is never cut). */
function fitInside(fit: Fit, crop: Rect, size: number): Frame {
  const s = size / Math.max(crop.width, crop.height);
  const width = Math.min(size, Math.max(1, Math.round(crop.width * s)));
  const height = Math.min(size, Math.max(1, Math.round(crop.height * s)));
  return {
    fit,
    size,
    crop,
    target: { width, height },
    place: { left: Math.floor((size - width) / 2), top: Math.floor((size - height) / 2) },
    scale: Math.max(width / crop.width, height / crop.height),
  };
}

/**
 * The frame for one source of `width`×`height` (upright). `subject` is the subject's box in the same
 * coordinates; `fit: 'subject'` needs it (callers fall back to `pad` when there is none).
 */
export function computeFrame(fit: Fit, width: number, height: number, size: number, subject: Rect | null, margin: number): Frame {
  const whole: Rect = { left: 0, top: 0, width, height };
  if (fit === 'crop') {
    const side = Math.min(width, height);
    const crop = { left: Math.floor((width - side) / 2), top: Math.floor((height - side) / 2), width: side, height: side };
    return { fit, size, crop, target: { width: size, height: size }, place: { left: 0, top: 0 }, scale: size / side };
  }
  if (fit === 'subject') {
    if (!subject) throw new Error('subject framing needs a subject box');
    const m = Math.round(margin * Math.max(subject.width, subject.height));
    const left = Math.max(0, subject.left - m);
    const top = Math.max(0, subject.top - m);
    const right = Math.min(width, subject.left + subject.width + m);
    const bottom = Math.min(height, subject.top + subject.height + m);
    return fitInside(fit, { left, top, width: right - left, height: bottom - top }, size);
  }
  return fitInside('pad', whole, size);
}

/** Box of the mask values ≥ `threshold` (0–255), or null when none is. */
export function maskBox(mask: Uint8Array, width: number, height: number, threshold = 128): Rect | null {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let first = -1;
    let last = -1;
    for (let x = 0; x < width; x++) {
      if (mask[row + x] >= threshold) {
        if (first < 0) first = x;
        last = x;
      }
    }
    if (first < 0) continue;
    if (y < y0) y0 = y;
    y1 = y;
    if (first < x0) x0 = first;
    if (last > x1) x1 = last;
  }
  return x1 < 0 ? null : { left: x0, top: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

/** A box found on a mask of `mw`×`mh` covering the whole source, in source pixels (rounded outwards). */
export function scaleBox(box: Rect, mw: number, mh: number, width: number, height: number): Rect {
  const sx = width / mw;
  const sy = height / mh;
  const left = Math.max(0, Math.floor(box.left * sx));
  const top = Math.max(0, Math.floor(box.top * sy));
  const right = Math.min(width, Math.ceil((box.left + box.width) * sx));
  const bottom = Math.min(height, Math.ceil((box.top + box.height) * sy));
  return { left, top, width: right - left, height: bottom - top };
}

/** A source-space box seen in the output square (clipped to the placed image). */
export function boxInOutput(box: Rect, f: Frame): Rect {
  const sx = f.target.width / f.crop.width;
  const sy = f.target.height / f.crop.height;
  const clampX = (v: number) => Math.min(f.target.width, Math.max(0, v));
  const clampY = (v: number) => Math.min(f.target.height, Math.max(0, v));
  const left = clampX(Math.floor((box.left - f.crop.left) * sx));
  const top = clampY(Math.floor((box.top - f.crop.top) * sy));
  const right = clampX(Math.ceil((box.left + box.width - f.crop.left) * sx));
  const bottom = clampY(Math.ceil((box.top + box.height - f.crop.top) * sy));
  return { left: f.place.left + left, top: f.place.top + top, width: right - left, height: bottom - top };
}

export type Framing = 'full-body' | 'bust-up';

/**
 * Full body when the whole subject is inside the source with background below it; bust-up (or closer)
 * when the source's bottom edge cuts the subject off.
 */
export function classifyFraming(subject: Rect, height: number): Framing {
  const tolerance = Math.max(1, Math.round(height * 0.01));
  return subject.top + subject.height >= height - tolerance ? 'bust-up' : 'full-body';
}
