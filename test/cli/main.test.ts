import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runCli } from '../helpers/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('dbt entry point', () => {
  it('prints the package version', () => {
    const r = runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('prints help and exits 0', () => {
    const r = runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: dbt');
  });

  it('exits 2 on an unknown option, without a stack trace', () => {
    const r = runCli(['--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown option');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('suggests the closest command for a misspelt one, exit 2', () => {
    const r = runCli(['confg']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'confg'");
    expect(r.stderr).toContain('(Did you mean config?)');
  });

  it('rejects a --log-level outside the choices, exit 2', () => {
    const r = runCli(['--log-level', 'verbose', 'config', 'schema']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Allowed choices are trace, debug, info, warn, error, silent');
  });
});

describe('--json and usage errors', () => {
  it.each([
    [['--json', '--no-such-flag'], /unknown option '--no-such-flag'/],
    [['--json', 'confg'], /unknown command 'confg'/],
    [['--json', 'config', 'show'], /missing required argument 'spec'/],
    [['--json', 'export', 'x'], /required option '--out <path>' not specified/],
    [['prep', 'x', '--out', 'y', '--fit', 'cover', '--json'], /argument 'cover' is invalid/],
    [['--json', 'config'], /a subcommand is needed/],
  ])('%j: exit 2, one JSON error document on stdout, the message on stderr', (argv, message) => {
    const r = runCli(argv);
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { ok: boolean; error: string; message: string };
    expect(doc).toMatchObject({ ok: false, error: 'UsageError' });
    expect(doc.message).toMatch(message);
    expect(doc.message).not.toMatch(/^error:/);
    expect(r.stderr).not.toBe('');
  });

  it('without --json stdout stays empty on a usage error', () => {
    expect(runCli(['export', 'x']).stdout).toBe('');
  });
});
