import { Option, type Command } from 'commander';
import type { LogLevel } from '../log.js';

/** Options every command understands (declared once on the root, read with optsWithGlobals()). */
export interface GlobalOptions {
  json: boolean;
  logLevel: LogLevel;
}

/** The global options as seen from inside a (sub)command's action. */
export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as { json?: boolean; logLevel?: LogLevel };
  return { json: !!o.json, logLevel: o.logLevel ?? 'info' };
}

/**
 * `--set key.path=value`, repeatable, for every command that reads a run spec (the values are parsed by
 * src/config, which checks the keys against the schema). Read it as `opts.set ?? []`.
 */
export function setOption(): Option {
  return new Option('--set <key=value>', 'override a run-spec value, e.g. --set lr=2e-6 (repeatable)').argParser(
    (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
  );
}
