import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isPlainModelName } from '../config/index.js';

/** Below this much tensor data a progress bar is only noise. */
export const PROGRESS_MIN_BYTES = 64e6;

/**
 * A model argument as users type it: a path, or a plain name meaning `models/<name>` (the run spec's
 * convention) when no file or folder of that name is here.
 */
export function resolveModelArg(arg: string, cwd = process.cwd()): string {
  const direct = resolve(cwd, arg);
  if (existsSync(direct) || !isPlainModelName(arg)) return direct;
  const named = join(cwd, 'models', arg);
  return existsSync(named) ? named : direct;
}
