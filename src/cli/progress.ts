import { SingleBar } from 'cli-progress';

/**
 * Progress for long loops (prep images, training steps, sampling). On a TTY stderr: a cli-progress bar.
 * Otherwise (CI, pipes, log files): one plain line every `intervalMs` and a final line — never a bar's
 * control characters. `mode: 'silent'` prints nothing. Never writes to stdout (that is for --json).
 */
export interface Progress {
  /** Sets the position; `fields` (e.g. { loss: 0.1234 }) are shown after the counts. */
  update(value: number, fields?: Record<string, string | number>): void;
  increment(delta?: number, fields?: Record<string, string | number>): void;
  /** Ends the bar (prints the final line in line mode). Safe to call twice. */
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  /** Unit of the rate, e.g. 'it' → "2.31 it/s". */
  unit?: string;
  mode?: 'auto' | 'bar' | 'lines' | 'silent';
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** Line mode: at most one line per this many milliseconds (default 10 s). */
  intervalMs?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

function formatFields(fields: Record<string, string | number>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toPrecision(4)) : v}`)
    .join(' ');
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const mode = opts.mode === 'auto' || opts.mode === undefined ? (stream.isTTY ? 'bar' : 'lines') : opts.mode;
  const unit = opts.unit ?? 'it';
  if (mode === 'silent') return { update() {}, increment() {}, stop() {} };
  if (mode === 'bar') return barProgress(opts, stream as NodeJS.WritableStream, unit);

  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 10_000;
  const start = now();
  let value = 0;
  let fields: Record<string, string | number> = {};
  let lastLine = -Infinity;
  let printedValue = -1;
  let stopped = false;
  const line = () => {
    const elapsed = (now() - start) / 1000;
    const rate = elapsed > 0 ? value / elapsed : 0;
    const pct = opts.total > 0 ? Math.floor((100 * value) / opts.total) : 100;
    const eta = rate > 0 ? formatDuration((opts.total - value) / rate) : '?';
    const extra = formatFields(fields);
    stream.write(`${opts.label}: ${value}/${opts.total} (${pct}%)${extra ? ` ${extra}` : ''} ${rate.toFixed(2)} ${unit}/s eta ${eta}\n`);
    lastLine = now();
    printedValue = value;
  };
  const update = (v: number, f?: Record<string, string | number>) => {
    value = v;
    if (f) fields = { ...fields, ...f };
    if (now() - lastLine >= interval) line();
  };
  return {
    update,
    increment: (d = 1, f) => update(value + d, f),
    stop() {
      if (stopped) return;
      stopped = true;
      if (printedValue !== value) line();
    },
  };
}

function barProgress(opts: ProgressOptions, stream: NodeJS.WritableStream, unit: string): Progress {
  const bar = new SingleBar({
    stream,
    format: `${opts.label} [{bar}] {percentage}% {value}/{total} {rate} ${unit}/s eta {eta_formatted} {extra}`,
    hideCursor: true,
    clearOnComplete: false,
    etaBuffer: 50,
    noTTYOutput: false,
  });
  const start = (opts.now ?? Date.now)();
  let stopped = false;
  let fields: Record<string, string | number> = {};
  const payload = (value: number) => {
    const elapsed = ((opts.now ?? Date.now)() - start) / 1000;
    return { extra: formatFields(fields), rate: elapsed > 0 ? (value / elapsed).toFixed(2) : '0.00' };
  };
  bar.start(opts.total, 0, payload(0));
  let value = 0;
  return {
    update(v, f) {
      value = v;
      if (f) fields = { ...fields, ...f };
      bar.update(v, payload(v));
    },
    increment(d = 1, f) {
      this.update(value + d, f);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
