import { availableParallelism } from 'node:os';
import { runSpecSchema, type JsonSchema } from '../config/index.js';
import { UsageError } from '../errors.js';

export type Rgb = [number, number, number];

/** How a source is framed into the square: see docs/prep.md. */
export type Fit = 'pad' | 'crop' | 'subject';
export const FITS: readonly Fit[] = ['pad', 'crop', 'subject'];

/** Everything `prepImages` needs; the CLI (flags or a run spec's `prep` section) only builds this. */
export interface PrepOptions {
  /** Folders and/or image files. */
  inputs: string[];
  /** Output folder (created). May not be an input folder. */
  out: string;
  /** Output side in pixels, a multiple of 64. */
  size: number;
  fit: Fit;
  /** Fill colour for padding and for transparent or removed background. */
  bg: Rgb;
  /** Remove the background of images without transparency with the segmentation model. */
  whiteBg: boolean;
  /** Segmentation model file; when absent, DBT_SEG_MODEL's value or the default location (see segment.ts). */
  segModel?: string;
  /** Binarise the segmentation mask at this value (0–1); absent: keep the model's soft mask. */
  maskThreshold?: number;
  /** Gaussian feather (sigma, output pixels) applied to the segmentation mask; 0 = none. */
  maskFeather: number;
  /** Write RGBA (background transparent) instead of compositing onto `bg`. */
  keepAlpha: boolean;
  /** `subject` framing: margin around the subject box, as a fraction of the box's longer side. */
  margin: number;
  /** Caption written where a source has no caption file of its own. */
  caption?: string;
  /** Put before every caption (joined with ", "). */
  captionPrefix?: string;
  recursive: boolean;
  /** Sources with more pixels than this are refused (decompression bombs). */
  maxPixels: number;
  /** Redo every source even when its hash and options are unchanged. */
  force: boolean;
  /** Warn when the subject's box covers less than this fraction of the output square's area. */
  minSubjectFraction: number;
  /** Images processed at the same time. */
  concurrency: number;
}

const NAMED_COLOURS: Record<string, Rgb> = {
  white: [255, 255, 255],
  black: [0, 0, 0],
  gray: [128, 128, 128],
  grey: [128, 128, 128],
  red: [255, 0, 0],
  green: [0, 128, 0],
  lime: [0, 255, 0],
  blue: [0, 0, 255],
  magenta: [255, 0, 255],
  cyan: [0, 255, 255],
  yellow: [255, 255, 0],
};

/** A default of the run spec's `prep` section: the schema is the one source of truth for both forms. */
function specDefault<T>(key: string): T {
  const prep = runSpecSchema.properties?.prep as JsonSchema | undefined;
  const prop = prep?.properties?.[key] as JsonSchema | undefined;
  if (!prop || !('default' in prop)) throw new Error(`run-spec schema has no default for prep.${key}`);
  return prop.default as T;
}

export const PREP_DEFAULTS = {
  /** `prep.size` follows `resolution`. */
  size: (runSpecSchema.properties?.resolution as JsonSchema).default as number,
  fit: specDefault<Fit>('fit'),
  bg: parseColour(specDefault<string>('bg')),
  whiteBg: specDefault<boolean>('white_bg'),
  maskFeather: specDefault<number>('mask_feather'),
  keepAlpha: specDefault<boolean>('keep_alpha'),
  margin: specDefault<number>('margin'),
  recursive: specDefault<boolean>('recursive'),
  maxPixels: specDefault<number>('max_pixels'),
  force: specDefault<boolean>('force'),
  minSubjectFraction: specDefault<number>('min_subject_fraction'),
};

export function defaultConcurrency(): number {
  return Math.max(1, availableParallelism());
}

/** Fills defaults; what callers give wins. */
export function withPrepDefaults(o: Partial<PrepOptions> & Pick<PrepOptions, 'inputs' | 'out'>): PrepOptions {
  return {
    ...PREP_DEFAULTS,
    concurrency: defaultConcurrency(),
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
  } as PrepOptions;
}

/** Every problem with the options at once, as one UsageError (exit 2). */
export function validatePrepOptions(o: PrepOptions): void {
  const problems: string[] = [];
  if (!o.inputs.length) problems.push('no input given: name a folder of images or image files');
  if (!o.out) problems.push('--out is required: the folder to write the prepared images to');
  if (!Number.isInteger(o.size) || o.size < 64 || o.size % 64 !== 0 || o.size > 4096) {
    problems.push(`--size ${o.size}: must be a multiple of 64 between 64 and 4096 (e.g. 512, 768)`);
  }
  if (!FITS.includes(o.fit)) problems.push(`--fit ${o.fit}: must be one of ${FITS.join(', ')}`);
  if (o.bg.length !== 3 || o.bg.some((c) => !Number.isInteger(c) || c < 0 || c > 255)) {
    problems.push(`--bg: colour channels must be integers 0–255, got ${JSON.stringify(o.bg)}`);
  }
  if (o.maskThreshold !== undefined && !(o.maskThreshold > 0 && o.maskThreshold < 1)) {
    problems.push(`--mask-threshold ${o.maskThreshold}: must be between 0 and 1 (exclusive), e.g. 0.5`);
  }
  if (!(o.maskFeather >= 0 && o.maskFeather <= 100)) problems.push(`--mask-feather ${o.maskFeather}: must be 0–100 pixels`);
  if (!(o.margin >= 0 && o.margin <= 1)) problems.push(`--margin ${o.margin}: must be a fraction 0–1 of the subject box (e.g. 0.05)`);
  if (!Number.isInteger(o.maxPixels) || o.maxPixels < 1) problems.push(`--max-pixels ${o.maxPixels}: must be a positive integer`);
  if (!(o.minSubjectFraction >= 0 && o.minSubjectFraction <= 1)) {
    problems.push(`--min-subject-fraction ${o.minSubjectFraction}: must be between 0 and 1`);
  }
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 64) {
    problems.push(`--concurrency ${o.concurrency}: must be an integer 1–64`);
  }
  if (problems.length === 1) throw new UsageError(problems[0]);
  if (problems.length) throw new UsageError(`${problems.length} problems with the prep options`, { details: problems });
}


/** `white`, `#fff`, `#ffffff`, `rgb(255, 255, 255)` or `255,255,255`. `what` names it in the error. */
export function parseColour(text: string, what = '--bg'): Rgb {
  const t = text.trim().toLowerCase();
  if (NAMED_COLOURS[t]) return [...NAMED_COLOURS[t]] as Rgb;
  let m = /^#([0-9a-f]{3})$/.exec(t);
  if (m) return [...m[1]].map((h) => parseInt(h + h, 16)) as Rgb;
  m = /^#([0-9a-f]{6})$/.exec(t);
  if (m) return [0, 2, 4].map((i) => parseInt(m![1].slice(i, i + 2), 16)) as Rgb;
  m = /^(?:rgb\()?\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)?$/.exec(t);
  if (m && (t.startsWith('rgb(') === t.endsWith(')'))) {
    const rgb = [m[1], m[2], m[3]].map(Number) as Rgb;
    if (rgb.every((c) => c <= 255)) return rgb;
  }
  throw new UsageError(`${what} "${text}": not a colour`, {
    details: [`use a name (${Object.keys(NAMED_COLOURS).join(', ')}), #rrggbb, #rgb or r,g,b with values 0–255`],
  });
}

export function colourHex(c: Rgb): string {
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}
