import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** JSON-lines file, e.g. runs/<name>/log.jsonl (appended to; its folder is created). No file: logs go nowhere. */
  file?: string;
  level?: LogLevel;
  /** Fields on every line, e.g. { run: 'nanu-lr1e-6' }. */
  base?: Record<string, unknown>;
}

/** A pino logger that can be closed: close() flushes and releases the file (call it before exiting). */
export type RunLogger = Logger & { close(): void };

/**
 * The structured log of a run: one JSON object per line with `level` (pino's number), `time` (ISO-8601),
 * `msg` and the given fields, e.g. `log.info({ step, loss, lr, its }, 'step')`. Writes are synchronous so a
 * crash never loses the last lines. Human output goes to stderr through Output, never here.
 */
export function createLogger(opts: LoggerOptions = {}): RunLogger {
  const level = opts.level ?? 'info';
  const options = { level, base: opts.base ?? null, timestamp: pino.stdTimeFunctions.isoTime };
  if (!opts.file) {
    const logger = pino({ ...options, level: 'silent' });
    return Object.assign(logger, { close() {} });
  }
  mkdirSync(dirname(opts.file), { recursive: true });
  const dest = pino.destination({ dest: opts.file, sync: true, append: true });
  const logger = pino(options, dest);
  let closed = false;
  return Object.assign(logger, {
    close() {
      if (closed) return;
      closed = true;
      dest.flushSync();
      dest.end();
    },
  });
}
