import { ConfigError, DbtError, EXIT_RUNTIME, isDbtError } from '../errors.js';

/** Where a command writes: humans read stderr, scripts read one JSON document on stdout. */
export interface Output {
  json: boolean;
  /** Human message on stderr (suppressed by nothing: progress and results for people). */
  info(message: string): void;
  warn(message: string): void;
  /** The command's result: JSON on stdout with --json, else the human text on stderr. */
  result(value: unknown, human?: string): void;
  /** A product meant for redirection (a YAML spec, a schema): as is, on stdout. */
  data(text: string): void;
}

export interface OutputStreams {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const defaultStreams: OutputStreams = { stdout: process.stdout, stderr: process.stderr };

export function useColor(stream: { isTTY?: boolean } = process.stderr): boolean {
  return !process.env.NO_COLOR && !!stream.isTTY;
}

export function createOutput(json: boolean, streams: OutputStreams = defaultStreams): Output {
  const color = useColor(streams.stderr as { isTTY?: boolean });
  const yellow = (s: string) => (color ? `\x1b[33m${s}\x1b[0m` : s);
  return {
    json,
    info: (m) => void streams.stderr.write(`${m}\n`),
    warn: (m) => void streams.stderr.write(`${yellow('warning:')} ${m}\n`),
    result(value, human) {
      if (json) streams.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else if (human !== undefined) streams.stderr.write(human.endsWith('\n') ? human : `${human}\n`);
    },
    data: (text) => void streams.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  };
}

/** What an operating-system error means for the user (the environment, not a bug in dbt). */
const SYSTEM_ERRORS: Record<string, string> = {
  ENOSPC: 'the disk is full: free some space or write somewhere else',
  EDQUOT: 'the disk quota is used up: free some space or write somewhere else',
  EACCES: "permission denied: check the folder's permissions or write somewhere else",
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only: write somewhere else',
  ENOENT: 'no such file or folder',
  EEXIST: 'something of that name already exists',
  ENOTDIR: 'part of the path is a file, not a folder',
  EISDIR: 'is a folder, not a file',
  EMFILE: 'too many open files (raise the limit: ulimit -n)',
  ENFILE: 'too many open files on the system',
  EIO: 'input/output error reported by the disk or file system',
  ENAMETOOLONG: 'the name is too long for the file system',
};

/**
 * A file-system error from Node (disk full, permission denied, read-only folder, …) as a runtime failure with
 * a one-line message; null for anything else.
 */
export function systemError(err: unknown): DbtError | null {
  if (!(err instanceof Error)) return null;
  const e = err as NodeJS.ErrnoException;
  if (typeof e.code !== 'string' || typeof e.syscall !== 'string' || !(e.code in SYSTEM_ERRORS)) return null;
  return new DbtError(`cannot ${e.syscall}${e.path ? ` ${e.path}` : ''}: ${SYSTEM_ERRORS[e.code]} (${e.code})`, { cause: e });
}

/** Print an error the way users should see it; returns the exit code. */
export function reportError(err: unknown, streams: OutputStreams = defaultStreams, json = false): number {
  const sys = systemError(err);
  if (sys) return reportError(sys, streams, json);
  const color = useColor(streams.stderr as { isTTY?: boolean });
  const red = (s: string) => (color ? `\x1b[31m${s}\x1b[0m` : s);
  if (isDbtError(err)) {
    const e = err as DbtError;
    const issues = e instanceof ConfigError ? { issues: e.issues } : {};
    if (json && !e.resultPrinted) streams.stdout.write(`${JSON.stringify({ ok: false, error: e.name, message: e.message, details: e.details, ...issues })}\n`);
    streams.stderr.write(`${red('error:')} ${e.message}\n`);
    for (const d of e.details) streams.stderr.write(`  ${d}\n`);
    if (process.env.DBT_DEBUG && e.stack) streams.stderr.write(`${e.stack}\n`);
    return e.exitCode;
  }
  // Not ours: a bug. Say so, with the stack, so it can be reported.
  const e = err instanceof Error ? err : new Error(String(err));
  if (json) streams.stdout.write(`${JSON.stringify({ ok: false, error: 'InternalError', message: e.message })}\n`);
  streams.stderr.write(`${red('internal error:')} ${e.message}\n${e.stack ?? ''}\n`);
  streams.stderr.write('This is a bug in dbt; please report it with the command you ran.\n');
  return EXIT_RUNTIME;
}
