import { Command, Option } from 'commander';
import { resolve } from 'node:path';
import { exportModel, type ExportFormat } from '../model/export.js';
import type { FloatStoreDType } from '../model/dtype.js';
import { createOutput } from './output.js';
import { globalOptions } from './options.js';
import { createProgress, type Progress } from './progress.js';
import { PROGRESS_MIN_BYTES, resolveModelArg } from './model-args.js';
import { onInterruptRemoveTemporaries } from './interrupt.js';

export interface ExportCommandOptions {
  json: boolean;
  source: string;
  out: string;
  format: ExportFormat;
  /** Unset: keep the source's precision. */
  dtype?: FloatStoreDType;
  ema: boolean;
  title?: string;
  tokenizer?: string;
  force: boolean;
  /** Compute the output's sha256 / A1111 hash (`--hash`). */
  hash: boolean;
}

export async function exportAction(o: ExportCommandOptions): Promise<void> {
  const out = createOutput(o.json);
  let bar: Progress | undefined;
  let r;
  const uninstall = onInterruptRemoveTemporaries(() => [resolve(o.out)], o.json);
  try {
    r = await exportModel({
      source: resolveModelArg(o.source),
      out: o.out,
      format: o.format,
      dtype: o.dtype,
      ema: o.ema,
      title: o.title,
      tokenizer: o.tokenizer,
      force: o.force,
      hash: o.hash,
      onBytes: (done, total) => {
        if (total < PROGRESS_MIN_BYTES) return;
        bar ??= createProgress({ label: 'export', total: Math.round(total / 1e6), unit: 'MB' });
        bar.update(Math.round(done / 1e6));
      },
    });
  } finally {
    uninstall();
    bar?.stop();
  }
  for (const n of r.notes) out.info(`note: ${n}`);
  for (const w of r.warnings) out.warn(w);
  out.result(
    { ok: true, command: 'export', out: r.out, format: r.format, dtype: r.dtype, tensors: r.tensors, bytes: r.bytes, hashes: r.hashes && { sha256: r.hashes.sha256, a1111: r.hashes.a1111, a1111_legacy: r.hashes.a1111Legacy }, metadata: r.metadata, notes: r.notes, warnings: r.warnings },
    `wrote ${r.out}: ${r.format}, ${r.dtype}, ${r.tensors} tensors, ${(r.bytes / 1e6).toFixed(1)} MB${r.hashes ? `, A1111 hash ${r.hashes.a1111}` : ''}`,
  );
}

export function registerExport(program: Command, action: (o: ExportCommandOptions) => void | Promise<void> = exportAction): void {
  program
    .command('export')
    .description('write a model directory or run checkpoint as one web-UI checkpoint (.safetensors) or a diffusers folder')
    .argument('<source>', 'model directory, run checkpoint directory, .safetensors, .ckpt or diffusers folder')
    .requiredOption('--out <path>', 'output .safetensors file (or folder with --format diffusers)')
    .addOption(new Option('--format <format>', 'output format').choices(['safetensors', 'diffusers']).default('safetensors'))
    .addOption(new Option('--half', 'float16 weights').conflicts(['bf16', 'fp32']))
    .addOption(new Option('--bf16', 'bfloat16 weights').conflicts(['fp32']))
    .addOption(new Option('--fp32', 'float32 weights (default: keep the source precision)'))
    .option('--ema', 'export the EMA weights of the UNet', false)
    .option('--title <title>', 'modelspec.title shown by model browsers (default: the model name)')
    .option('--tokenizer <path>', 'CLIP vocabulary for a diffusers export')
    .option('--force', 'replace an existing output', false)
    .option('--hash', 'also compute the output\'s sha256 / A1111 hash (costs as much CPU as writing; the web UIs hash on first load)', false)
    .option('--no-hash', 'do not hash (the default)')
    .action(async (source: string, opts: Record<string, unknown>, cmd: Command) => {
      await action({
        json: globalOptions(cmd).json,
        source,
        out: opts.out as string,
        format: opts.format as ExportFormat,
        dtype: opts.half ? 'F16' : opts.bf16 ? 'BF16' : opts.fp32 ? 'F32' : undefined,
        ema: !!opts.ema,
        title: opts.title as string | undefined,
        tokenizer: opts.tokenizer as string | undefined,
        force: !!opts.force,
        hash: !!opts.hash,
      });
    });
}

export const register = (program: Command) => registerExport(program);
