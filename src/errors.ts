/**
 * Errors that reach the user. Each carries the process exit code the CLI uses
 * (DESIGN.md: 0 ok, 1 runtime failure, 2 usage/configuration, 130 interrupted).
 * Anything that is not a DbtError is a bug and is printed with its stack.
 */
export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

export class DbtError extends Error {
  readonly exitCode: number;
  /** Extra lines printed under the message (hints, per-item details). */
  readonly details: string[];
  /**
   * The command already printed its JSON result (e.g. a report saying some inputs failed); with --json the
   * error must not add a second JSON document to stdout. The message still goes to stderr.
   */
  readonly resultPrinted: boolean;
  constructor(message: string, opts: { exitCode?: number; details?: string[]; cause?: unknown; resultPrinted?: boolean } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? EXIT_RUNTIME;
    this.details = opts.details ?? [];
    this.resultPrinted = opts.resultPrinted ?? false;
  }
}

/** Bad command line: unknown flag, missing argument, conflicting options. */
export class UsageError extends DbtError {
  constructor(message: string, opts: { details?: string[]; cause?: unknown } = {}) {
    super(message, { ...opts, exitCode: EXIT_USAGE });
  }
}

/** One problem found in a configuration file, with where it is. */
export interface ConfigIssue {
  file?: string;
  line?: number;
  column?: number;
  /** Dotted key path, e.g. `concepts[0].instance_prompt`. */
  path?: string;
  message: string;
  hint?: string;
}

export function formatConfigIssue(issue: ConfigIssue): string {
  let where = issue.file ?? '';
  if (issue.line !== undefined) where += `${where ? ':' : 'line '}${issue.line}${issue.column !== undefined ? `:${issue.column}` : ''}`;
  const path = issue.path ? `${issue.path}: ` : '';
  const hint = issue.hint ? ` (${issue.hint})` : '';
  return `${where ? `${where}: ` : ''}${path}${issue.message}${hint}`;
}

/** A run spec or other configuration is wrong. All problems are reported at once. */
export class ConfigError extends DbtError {
  readonly issues: ConfigIssue[];
  constructor(message: string, issues: ConfigIssue[] = []) {
    super(message, { exitCode: EXIT_USAGE, details: issues.map(formatConfigIssue) });
    this.issues = issues;
  }
}

/** A file we were asked to read is malformed, truncated or hostile. */
export class FileFormatError extends DbtError {
  readonly file: string;
  constructor(file: string, message: string, opts: { cause?: unknown; details?: string[] } = {}) {
    super(`${file}: ${message}`, { ...opts, exitCode: EXIT_RUNTIME });
    this.file = file;
  }
}

/** The user pressed Ctrl-C (or the process got SIGTERM); state was saved where that applies. */
export class InterruptedError extends DbtError {
  constructor(message = 'interrupted') {
    super(message, { exitCode: EXIT_INTERRUPTED });
  }
}

export function isDbtError(e: unknown): e is DbtError {
  return e instanceof DbtError;
}
