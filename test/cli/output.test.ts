import { describe, expect, it } from 'vitest';
import { createOutput, reportError } from '../../src/cli/output.js';
import { ConfigError, DbtError, FileFormatError, InterruptedError, UsageError } from '../../src/errors.js';

function streams() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    streams: { stdout: { write: (s: string) => void (out.stdout += s) }, stderr: { write: (s: string) => void (out.stderr += s) } },
  };
}

describe('reportError: every error class, its exit code, no stack', () => {
  it.each([
    [new ConfigError('run.yaml: 1 problem in the run spec', [{ file: 'run.yaml', line: 3, column: 5, path: 'lr', message: 'expected a number', hint: 'e.g. 1e-6' }]), 2, 'error: run.yaml: 1 problem in the run spec\n  run.yaml:3:5: lr: expected a number (e.g. 1e-6)\n'],
    [new UsageError('--size must be a multiple of 64', { details: ['got 500'] }), 2, 'error: --size must be a multiple of 64\n  got 500\n'],
    [new FileFormatError('a.safetensors', 'header is truncated'), 1, 'error: a.safetensors: header is truncated\n'],
    [new DbtError('out of memory'), 1, 'error: out of memory\n'],
    [new InterruptedError(), 130, 'error: interrupted\n'],
  ])('%s', (err, code, text) => {
    const { out, streams: s } = streams();
    expect(reportError(err, s)).toBe(code);
    expect(out.stderr).toBe(text);
    expect(out.stdout).toBe('');
  });

  it('with --json prints one JSON object on stdout too, ConfigError with its issues', () => {
    const { out, streams: s } = streams();
    const err = new ConfigError('bad', [{ file: 'f', line: 1, path: 'lr', message: 'm' }]);
    expect(reportError(err, s, true)).toBe(2);
    expect(JSON.parse(out.stdout)).toEqual({ ok: false, error: 'ConfigError', message: 'bad', details: ['f:1: lr: m'], issues: [{ file: 'f', line: 1, path: 'lr', message: 'm' }] });
  });

  it('file-system errors (disk full, permission denied, …) are the environment, not a bug: one line, exit 1', () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write', errno: -28 });
    const eacces = Object.assign(new Error("EACCES: permission denied, mkdir '/srv/models'"), { code: 'EACCES', syscall: 'mkdir', path: '/srv/models', errno: -13 });
    for (const [err, text] of [
      [enospc, 'error: cannot write: the disk is full: free some space or write somewhere else (ENOSPC)\n'],
      [eacces, "error: cannot mkdir /srv/models: permission denied: check the folder's permissions or write somewhere else (EACCES)\n"],
    ] as const) {
      const { out, streams: s } = streams();
      expect(reportError(err, s)).toBe(1);
      expect(out.stderr).toBe(text);
    }
    const { out, streams: s } = streams();
    expect(reportError(enospc, s, true)).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ ok: false, error: 'DbtError', message: expect.stringContaining('ENOSPC') });
  });

  it('anything else is a bug: stack printed, exit 1', () => {
    const { out, streams: s } = streams();
    expect(reportError(new TypeError('x is undefined'), s)).toBe(1);
    expect(out.stderr).toMatch(/^internal error: x is undefined\n/);
    expect(out.stderr).toMatch(/\n\s+at /);
    expect(out.stderr).toContain('This is a bug in dbt');
  });
});

describe('colour', () => {
  it('colours errors only on a TTY and never with NO_COLOR', () => {
    const saved = process.env.NO_COLOR;
    try {
      const tty = () => {
        const o = { stdout: '', stderr: '' };
        return { o, s: { stdout: { write: (x: string) => void (o.stdout += x) }, stderr: { isTTY: true, write: (x: string) => void (o.stderr += x) } } };
      };
      delete process.env.NO_COLOR;
      const a = tty();
      reportError(new DbtError('boom'), a.s);
      expect(a.o.stderr).toContain('\x1b[31m');
      process.env.NO_COLOR = '1';
      const b = tty();
      reportError(new DbtError('boom'), b.s);
      createOutput(false, b.s).warn('w');
      expect(b.o.stderr).toBe('error: boom\nwarning: w\n');
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });
});

describe('createOutput', () => {
  it('human mode: messages and results on stderr, data on stdout', () => {
    const { out, streams: s } = streams();
    const o = createOutput(false, s);
    o.info('hello');
    o.warn('careful');
    o.result({ a: 1 }, 'done');
    o.data('k: v');
    expect(out.stderr).toBe('hello\nwarning: careful\ndone\n');
    expect(out.stdout).toBe('k: v\n');
  });

  it('json mode: the result as JSON on stdout, messages still on stderr', () => {
    const { out, streams: s } = streams();
    const o = createOutput(true, s);
    o.info('working');
    o.result({ ok: true }, 'done');
    expect(out.stderr).toBe('working\n');
    expect(JSON.parse(out.stdout)).toEqual({ ok: true });
  });
});
