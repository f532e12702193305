import { Command, InvalidArgumentError, Option } from 'commander';
import { join, resolve } from 'node:path';
import { ARCHS, isPlainModelName, loadRunSpec, SAMPLERS } from '../config/index.js';
import { ConfigError, formatConfigIssue, UsageError } from '../errors.js';
import { createModel, type CreateModelOptions, type CreateModelResult } from '../model/create.js';
import { createOutput } from './output.js';
import { globalOptions, setOption } from './options.js';
import { createProgress, type Progress } from './progress.js';
import { PROGRESS_MIN_BYTES, resolveModelArg } from './model-args.js';
import { onInterruptRemoveTemporaries } from './interrupt.js';

/** What `dbt create` was asked, straight from argv. */
export interface CreateCommandOptions {
  json: boolean;
  /** A model name / path, or a run spec (.yaml) whose `model` section says what to create. */
  target: string;
  from?: string;
  arch?: (typeof ARCHS)[number];
  seed?: number;
  half: boolean;
  scheduler?: (typeof SAMPLERS)[number];
  useEma: boolean;
  tokenizer?: string;
  force: boolean;
  sets: string[];
}

const isSpecFile = (t: string) => /\.ya?ml$/i.test(t);

/** argv options → the model to create (reading the run spec's `model` section for `dbt create run.yaml`). */
export function createRequest(o: CreateCommandOptions, cwd = process.cwd()): { request: CreateModelOptions; warnings: string[] } {
  if (isSpecFile(o.target)) {
    const flags = (['from', 'arch', 'seed', 'scheduler', 'tokenizer'] as const).filter((k) => o[k] !== undefined).concat(o.half ? ['half' as never] : [], o.useEma ? ['useEma' as never] : []);
    if (flags.length) throw new UsageError(`with a run spec, set the model through the spec or --set model.<key>=… (not --${flags.join(', --')})`);
    const loaded = loadRunSpec(o.target, o.sets);
    const m = loaded.spec.model;
    if (m.from == null && m.arch == null) {
      throw new ConfigError(`${loaded.file}: the model section says neither where the model comes from nor which architecture to initialise`, [
        { file: loaded.file, path: 'model', message: 'give model.from (a .safetensors/.ckpt file or a diffusers folder) or model.arch (tiny or sd15, random weights)', hint: 'or --set model.from=<file>' },
      ]);
    }
    return {
      request: {
        dir: m.name,
        from: m.from ?? undefined,
        arch: m.arch ?? undefined,
        seed: m.seed,
        half: m.half,
        scheduler: m.scheduler,
        useEma: m.use_ema,
        tokenizer: m.tokenizer ?? undefined,
        force: o.force,
      },
      warnings: loaded.warnings.map(formatConfigIssue),
    };
  }
  if (o.sets.length) throw new UsageError('--set needs a run spec: dbt create run.yaml --set model.seed=3');
  if (!o.from && !o.arch) throw new UsageError('say where the model comes from: --from <checkpoint|folder> or --arch tiny|sd15');
  return {
    request: {
      dir: isPlainModelName(o.target) ? join(cwd, 'models', o.target) : resolve(cwd, o.target),
      from: o.from && resolveModelArg(o.from, cwd),
      arch: o.arch,
      seed: o.seed,
      half: o.half,
      scheduler: o.scheduler,
      useEma: o.useEma,
      tokenizer: o.tokenizer,
      force: o.force,
    },
    warnings: [],
  };
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

export async function createAction(o: CreateCommandOptions): Promise<void> {
  const out = createOutput(o.json);
  const { request, warnings } = createRequest(o);
  for (const w of warnings) out.warn(w);
  let bar: Progress | undefined;
  let result: CreateModelResult;
  const uninstall = onInterruptRemoveTemporaries(() => [request.dir], o.json);
  try {
    result = await createModel({
      ...request,
      onPhase: (phase) => phase === 'hashing' && out.info(`hashing ${request.from} …`),
      onBytes: (done, total) => {
        if (total < PROGRESS_MIN_BYTES) return;
        bar ??= createProgress({ label: 'create', total: Math.round(total / 1e6), unit: 'MB' });
        bar.update(Math.round(done / 1e6));
      },
    });
  } finally {
    uninstall();
    bar?.stop();
  }
  for (const n of result.notes) out.info(`note: ${n}`);
  for (const w of result.warnings) out.warn(w);
  const m = result.model;
  const from = m.source.kind === 'file' ? `from ${m.source.path}${m.source.used_ema ? ' (EMA weights)' : ''}` : `random, seed ${m.source.seed}`;
  out.result(
    { ok: true, command: 'create', dir: result.dir, arch: m.arch.name, dtype: m.dtype, bytes: result.bytes, source: m.source, scheduler: m.scheduler, tokenizer: m.tokenizer, notes: result.notes, warnings: result.warnings },
    `created ${result.dir}: ${m.arch.name === 'tiny' ? 'tiny' : 'SD1.x'} ${m.dtype}, ${mb(result.bytes)}, ${from}${m.source.kind === 'file' && m.source.a1111_hash ? ` [${m.source.a1111_hash}]` : ''}`,
  );
}

function seedArg(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('the seed must be a non-negative integer');
  return n;
}

export function registerCreate(program: Command, action: (o: CreateCommandOptions) => void | Promise<void> = createAction): void {
  program
    .command('create')
    .description('make a model directory (models/<name>) from a checkpoint, a diffusers folder or random weights')
    .argument('<name>', 'model name (models/<name>), a path, or a run spec .yaml whose model section says what to create')
    .option('--from <path>', 'source: .safetensors, .ckpt, a diffusers folder or another model directory')
    .addOption(new Option('--arch <arch>', 'random weights of this architecture instead of --from').choices([...ARCHS]))
    .option('--seed <n>', 'seed for --arch initialisation (default 0)', seedArg)
    .option('--half', 'store float16 weights (half the disk)', false)
    .addOption(new Option('--scheduler <name>', 'default sampler recorded in the model (default ddim)').choices([...SAMPLERS]))
    .option('--use-ema', 'take the EMA weights (model_ema.*) of the source', false)
    .option('--tokenizer <path>', 'CLIP vocabulary: bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json + merges.txt')
    .option('--force', 'replace an existing model directory', false)
    .addOption(setOption())
    .action(async (target: string, opts: Record<string, unknown>, cmd: Command) => {
      await action({
        json: globalOptions(cmd).json,
        target,
        from: opts.from as string | undefined,
        arch: opts.arch as CreateCommandOptions['arch'],
        seed: opts.seed as number | undefined,
        half: !!opts.half,
        scheduler: opts.scheduler as CreateCommandOptions['scheduler'],
        useEma: !!opts.useEma,
        tokenizer: opts.tokenizer as string | undefined,
        force: !!opts.force,
        sets: (opts.set as string[] | undefined) ?? [],
      });
    });
}

export const register = (program: Command) => registerCreate(program);
