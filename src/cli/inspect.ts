import type { Command } from 'commander';
import { formatInspectReport, inspectModel } from '../model/inspect.js';
import { createOutput } from './output.js';
import { globalOptions } from './options.js';
import { createProgress, type Progress } from './progress.js';
import { resolveModelArg } from './model-args.js';

export interface InspectCommandOptions {
  json: boolean;
  path: string;
  scan: boolean;
  hash: boolean;
  tokenizer?: string;
}

export async function inspectAction(o: InspectCommandOptions): Promise<void> {
  const out = createOutput(o.json);
  let bar: Progress | undefined;
  let report;
  try {
    report = await inspectModel({
      path: resolveModelArg(o.path),
      scan: o.scan,
      hash: o.hash,
      tokenizer: o.tokenizer,
      onScan: (done, total) => {
        bar ??= createProgress({ label: 'scan', total, unit: 'tensors' });
        bar.update(done);
      },
    });
  } finally {
    bar?.stop();
  }
  if (o.json) out.result({ ok: true, command: 'inspect', ...report });
  else out.data(formatInspectReport(report));
}

export function registerInspect(program: Command, action: (o: InspectCommandOptions) => void | Promise<void> = inspectAction): void {
  program
    .command('inspect')
    .description('describe a model file or folder: format, architecture, parameters, dtypes, hashes, metadata, EMA, pickle globals')
    .argument('<path>', '.safetensors, .ckpt, model directory, run checkpoint directory or diffusers folder')
    .option('--scan', 'read every tensor and report NaN / Inf values', false)
    .option('--no-hash', 'skip the sha256 / A1111 hashes (they read the whole file)')
    .option('--tokenizer <path>', 'CLIP vocabulary to check against the model')
    .action(async (path: string, opts: { scan?: boolean; hash?: boolean; tokenizer?: string }, cmd: Command) => {
      await action({ json: globalOptions(cmd).json, path, scan: !!opts.scan, hash: opts.hash !== false, tokenizer: opts.tokenizer });
    });
}

export const register = (program: Command) => registerInspect(program);
