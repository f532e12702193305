import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { DbtError, UsageError } from '../errors.js';
import { formatPrepReport, parseColour, prepImages, PREP_DEFAULTS, defaultConcurrency, type PrepOptions, type PrepReport } from '../prep/index.js';
import { createOutput, type Output } from './output.js';
import type { GlobalOptions } from './program.js';

/** The flags as commander hands them over (strings, parsed and checked by `prepOptionsFromFlags`). */
export interface PrepFlags {
  out?: string;
  size?: string;
  fit?: string;
  bg?: string;
  whiteBg?: boolean;
  segModel?: string;
  maskThreshold?: string;
  maskFeather?: string;
  keepAlpha?: boolean;
  margin?: string;
  caption?: string;
  captionPrefix?: string;
  recursive?: boolean;
  maxPixels?: string;
  force?: boolean;
  minSubjectFraction?: string;
  concurrency?: string;
}

function number(flag: string, text: string | undefined, kind: 'int' | 'float'): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim().replace(/_/g, '');
  const ok = kind === 'int' ? /^[+]?\d+$/.test(t) || /^\d+(\.\d+)?e\d+$/i.test(t) : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t);
  const v = Number(t);
  if (!ok || !Number.isFinite(v) || (kind === 'int' && !Number.isInteger(v))) {
    throw new UsageError(`${flag} ${text}: expected ${kind === 'int' ? 'a whole number' : 'a number'}`);
  }
  return v;
}

/** argv → options (pure; tested as a table). Range checks live in validatePrepOptions. */
export function prepOptionsFromFlags(inputs: string[], f: PrepFlags): PrepOptions {
  if (!f.out) throw new UsageError('--out <dir> is required: the folder to write the prepared images to');
  const options: PrepOptions = {
    inputs,
    out: f.out,
    size: number('--size', f.size, 'int') ?? PREP_DEFAULTS.size,
    fit: (f.fit as PrepOptions['fit']) ?? PREP_DEFAULTS.fit,
    bg: f.bg !== undefined ? parseColour(f.bg) : [...PREP_DEFAULTS.bg],
    whiteBg: !!f.whiteBg,
    segModel: f.segModel,
    maskThreshold: number('--mask-threshold', f.maskThreshold, 'float'),
    maskFeather: number('--mask-feather', f.maskFeather, 'float') ?? PREP_DEFAULTS.maskFeather,
    keepAlpha: !!f.keepAlpha,
    margin: number('--margin', f.margin, 'float') ?? PREP_DEFAULTS.margin,
    caption: f.caption,
    captionPrefix: f.captionPrefix,
    recursive: !!f.recursive,
    maxPixels: number('--max-pixels', f.maxPixels, 'int') ?? PREP_DEFAULTS.maxPixels,
    force: !!f.force,
    minSubjectFraction: number('--min-subject-fraction', f.minSubjectFraction, 'float') ?? PREP_DEFAULTS.minSubjectFraction,
    concurrency: number('--concurrency', f.concurrency, 'int') ?? defaultConcurrency(),
  };
  if (options.maskThreshold !== undefined || options.maskFeather) {
    if (!options.whiteBg) throw new UsageError('--mask-threshold and --mask-feather shape the segmentation mask: use them with --white-bg');
  }
  return options;
}

/** Declares `dbt prep` and its flags (the action is attached by the caller). */
export function declarePrepCommand(program: Command): Command {
  return program
    .command('prep')
    .summary('turn a folder of raw images into a square, clean, captioned training set')
    .description(
      'Prepare training images: every image in the inputs becomes <out>/<name>.png (square, sRGB, background ' +
        'filled), its caption <out>/<name>.txt, and <out>/prep.json records what was done. Sources are never ' +
        'modified; re-running skips images whose source and options are unchanged. See docs/prep.md.',
    )
    .argument('<inputs...>', 'folders of images and/or image files')
    .option('--out <dir>', 'output folder (required; not an input folder)')
    .option('--size <px>', 'output side in pixels, a multiple of 64', String(PREP_DEFAULTS.size))
    .addOption(new Option('--fit <mode>', 'pad: whole image, padded; crop: centre square; subject: box around the subject, padded').choices(['pad', 'crop', 'subject']).default('pad'))
    .option('--bg <colour>', 'fill colour: a name, #rrggbb or r,g,b', 'white')
    .option('--white-bg', 'remove the background of images without transparency (segmentation model) and fill with --bg')
    .option('--seg-model <file>', 'isnetis.onnx segmentation model (else $DBT_SEG_MODEL, else ~/.cache/dbt/isnetis.onnx)')
    .option('--mask-threshold <t>', 'binarise the segmentation mask at t (0–1)')
    .option('--mask-feather <px>', 'soften the segmentation mask edge (Gaussian sigma, output pixels)')
    .option('--keep-alpha', 'write RGBA with a transparent background instead of filling it')
    .option('--margin <fraction>', 'subject framing: margin around the subject box, fraction of its longer side', String(PREP_DEFAULTS.margin))
    .option('--caption <text>', 'caption for images that have no name.txt / name.caption of their own')
    .option('--caption-prefix <text>', 'put before every caption, e.g. "nanU Unan"')
    .option('-r, --recursive', 'also read sub-folders of input folders')
    .option('--max-pixels <n>', 'refuse sources with more pixels (decompression bombs)', String(PREP_DEFAULTS.maxPixels))
    .option('--force', 'redo every image even if unchanged since the last run')
    .option('--min-subject-fraction <f>', 'warn when the subject spans less than this fraction of the frame', String(PREP_DEFAULTS.minSubjectFraction))
    .option('--concurrency <n>', 'images processed at the same time (default: CPU cores)');
}

function progressHooks(output: Output) {
  const tty = !output.json && !!process.stderr.isTTY;
  const bar = tty
    ? new cliProgress.SingleBar(
        { format: 'prep [{bar}] {value}/{total} {file}', stream: process.stderr, clearOnComplete: true, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  return {
    onStart: ({ total }: { total: number }) => bar?.start(total, 0, { file: '' }),
    onImage: (e: { done: number; source: string }) => bar?.update(e.done, { file: e.source }),
    stop: () => bar?.stop(),
  };
}

/** Runs prep with Ctrl-C / SIGTERM wired to an abort: in-flight images finish, nothing partial stays. */
export async function runPrep(options: PrepOptions, output: Output): Promise<PrepReport> {
  const controller = new AbortController();
  const onSignal = () => {
    if (controller.signal.aborted) return;
    output.info('stopping: finishing the images in flight, then saving the manifest…');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const progress = progressHooks(output);
  try {
    return await prepImages(options, { signal: controller.signal, onStart: progress.onStart, onImage: progress.onImage });
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export function reportPrep(report: PrepReport, output: Output): void {
  output.result(report, formatPrepReport(report));
  if (!report.ok) {
    const n = report.failures.length;
    throw new DbtError(`${n} of ${report.counts.sources} source${report.counts.sources === 1 ? '' : 's'} failed (listed above); the others were prepared`, {
      resultPrinted: true,
    });
  }
}

export function register(program: Command): void {
  declarePrepCommand(program).action(async (inputs: string[], flags: PrepFlags, cmd: Command) => {
    const globals = cmd.optsWithGlobals() as GlobalOptions;
    const output = createOutput(!!globals.json);
    const options = prepOptionsFromFlags(inputs, flags);
    reportPrep(await runPrep(options, output), output);
  });
}
