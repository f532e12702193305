import { Command, Option } from 'commander';
import { loadRunSpec } from '../config/index.js';
import { DbtError, formatConfigIssue, InterruptedError, UsageError } from '../errors.js';
import { checkRawDirs, formatPrepReport, parseColour, prepImages, prepJobsFromSpec, PREP_DEFAULTS, defaultConcurrency, type PrepOptions, type PrepReport } from '../prep/index.js';
import { createOutput, reportError, type Output } from './output.js';
import { globalOptions, setOption } from './options.js';
import { createProgress, type Progress } from './progress.js';

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
  set?: string[];
}

/** What `dbt prep …` asks for: prepare folders given as flags, or the concepts of a run spec. */
export type PrepRequest =
  | { kind: 'flags'; options: PrepOptions }
  | { kind: 'spec'; file: string; sets: string[]; concurrency: number };

const SPEC_FILE = /\.ya?ml$/i;
/** Flags that still apply with a run spec (the rest are the spec's `prep` section: use --set). */
const SPEC_FLAGS = new Set(['set', 'concurrency']);

function kebab(attribute: string): string {
  return `--${attribute.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * argv → request (pure; tested as a table). `explicit` lists the flags the user typed (commander
 * attribute names), so that defaults are not mistaken for flags given next to a run spec.
 */
export function prepRequestFromArgs(inputs: string[], f: PrepFlags, explicit: string[]): PrepRequest {
  const specs = inputs.filter((i) => SPEC_FILE.test(i));
  if (specs.length) {
    if (inputs.length > 1) throw new UsageError(`a run spec (${specs[0]}) is given alone: dbt prep ${specs[0]} [--set prep.<key>=<value> …]`);
    const misplaced = explicit.filter((k) => !SPEC_FLAGS.has(k)).map(kebab);
    if (misplaced.length) {
      throw new UsageError(`${misplaced.join(', ')}: with a run spec, prep options come from its prep section`, {
        details: ['change them in the spec or with --set, e.g. --set prep.size=768 --set prep.white_bg=true'],
      });
    }
    return { kind: 'spec', file: inputs[0], sets: f.set ?? [], concurrency: number('--concurrency', f.concurrency, 'int') ?? defaultConcurrency() };
  }
  if (f.set?.length) throw new UsageError('--set overrides a run spec value: dbt prep run.yaml --set prep.size=768');
  return { kind: 'flags', options: prepOptionsFromFlags(inputs, f) };
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
    .argument('<inputs...>', 'folders of images and/or image files; or one run spec (run.yaml), which prepares each concept\'s raw_dir into its instance_dir')
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
    .option('--min-subject-fraction <f>', 'warn when the subject\'s box covers less than this fraction of the frame', String(PREP_DEFAULTS.minSubjectFraction))
    .option('--concurrency <n>', 'images processed at the same time (default: CPU cores)')
    .addOption(setOption());
}

/**
 * The signal handler of a stoppable run: the first Ctrl-C asks for a clean stop (images in flight finish, the
 * manifest is saved); a second one, for when that takes too long or hangs, calls `force`.
 */
export function stopThenForce(controller: AbortController, output: Output, force: () => void): () => void {
  return () => {
    if (controller.signal.aborted) return force();
    output.info('stopping: finishing the images in flight, then saving the manifest… (Ctrl-C again to stop at once)');
    controller.abort();
  };
}

/** Runs prep with Ctrl-C / SIGTERM wired to an abort: in-flight images finish, nothing partial stays. */
export async function runPrep(options: PrepOptions, output: Output): Promise<PrepReport> {
  const controller = new AbortController();
  const onSignal = stopThenForce(controller, output, () => {
    // Temporaries of this process are removed by the next run (their process is gone); finished images stay.
    process.exit(reportError(new InterruptedError('interrupted again: stopped at once; the same command continues where it stopped'), undefined, output.json));
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let progress: Progress | null = null;
  try {
    return await prepImages(options, {
      signal: controller.signal,
      // With --json the report says it all; stderr stays quiet.
      onStart: ({ total }) => (progress = createProgress({ label: 'prep', total, unit: 'img', mode: output.json ? 'silent' : 'auto' })),
      onImage: (e) => progress?.update(e.done),
    });
  } finally {
    (progress as Progress | null)?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The report as `--json` prints it: snake_case keys like every other command's JSON (the library keeps camelCase). */
export function reportJson(report: PrepReport): Record<string, unknown> {
  const snake = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(snake)
    : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), snake(x)]))
    : v;
  return snake(report) as Record<string, unknown>;
}

const listedWhere = (output: Output) => (output.json ? 'see "failures" in the JSON report' : 'listed above');

export function reportPrep(report: PrepReport, output: Output): void {
  const { ok, ...rest } = report;
  output.result({ ok, command: 'prep', ...reportJson(rest as PrepReport) }, formatPrepReport(report));
  if (!report.ok) {
    const n = report.failures.length;
    throw new DbtError(`${n} of ${report.counts.sources} source${report.counts.sources === 1 ? '' : 's'} failed (${listedWhere(output)}); the others were prepared`, {
      resultPrinted: true,
    });
  }
}

/** `dbt prep run.yaml`: every concept with a raw_dir, one after the other; one result for all. */
async function prepFromSpec(req: Extract<PrepRequest, { kind: 'spec' }>, output: Output): Promise<void> {
  const loaded = loadRunSpec(req.file, req.sets);
  for (const w of loaded.warnings) output.warn(formatConfigIssue(w));
  const { jobs, without } = prepJobsFromSpec(loaded, req.concurrency);
  checkRawDirs(loaded, jobs);
  const concepts: { concept: number; instance_prompt: string; raw_dir: string; instance_dir: string; report: Record<string, unknown> }[] = [];
  const human: string[] = [];
  const reports: PrepReport[] = [];
  for (const job of jobs) {
    if (!output.json) output.info(`concept ${job.concept} (${job.instancePrompt}): ${job.options.inputs[0]} → ${job.options.out}`);
    const report = await runPrep(job.options, output);
    reports.push(report);
    concepts.push({ concept: job.concept, instance_prompt: job.instancePrompt, raw_dir: job.options.inputs[0], instance_dir: job.options.out, report: reportJson(report) });
    human.push(`concept ${job.concept} (${job.instancePrompt}):\n${formatPrepReport(report)}`);
  }
  if (without.length) human.push(`concepts without raw_dir (nothing to prepare): ${without.join(', ')}`);
  const ok = reports.every((r) => r.ok);
  output.result({ ok, command: 'prep', file: loaded.file, concepts, without_raw_dir: without }, human.join('\n'));
  if (!ok) {
    const failed = reports.reduce((n, r) => n + r.failures.length, 0);
    throw new DbtError(`${failed} source${failed === 1 ? '' : 's'} failed (${listedWhere(output)}); the others were prepared`, { resultPrinted: true });
  }
}

export function register(program: Command): void {
  const command = declarePrepCommand(program);
  command.action(async (inputs: string[], flags: PrepFlags, cmd: Command) => {
    const output = createOutput(globalOptions(cmd).json);
    const explicit = cmd.options.map((o) => o.attributeName()).filter((k) => cmd.getOptionValueSource(k) === 'cli');
    const request = prepRequestFromArgs(inputs, flags, explicit);
    if (request.kind === 'spec') await prepFromSpec(request, output);
    else reportPrep(await runPrep(request.options, output), output);
  });
}
