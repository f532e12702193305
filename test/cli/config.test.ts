import { join } from 'node:path';
import { Command } from 'commander';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { registerConfig, type ConfigActions } from '../../src/cli/config.js';
import { createProgram } from '../../src/cli/program.js';
import { loadRunSpec } from '../../src/config/index.js';
import { runCli } from '../helpers/cli.js';
import { MINIMAL, writeFiles } from '../config/helpers.js';

/** The options each action would receive for an argv (after `dbt`), via the real commander program. */
async function parsed(argv: string[]): Promise<{ action: string; opts: unknown }> {
  let got: { action: string; opts: unknown } | undefined;
  const actions: ConfigActions = {
    schema: (opts) => void (got = { action: 'schema', opts }),
    show: (opts) => void (got = { action: 'show', opts }),
  };
  const program = createProgram();
  // Replace the registered `config` command with one wired to the recording actions.
  const commands = (program as unknown as { commands: Command[] }).commands;
  commands.splice(commands.findIndex((c) => c.name() === 'config'), 1);
  registerConfig(program, actions);
  await program.parseAsync(['node', 'dbt', ...argv]);
  if (!got) throw new Error('no action ran');
  return got;
}

describe('dbt config: argv → options', () => {
  it.each([
    [['config', 'schema'], 'schema', { json: false }],
    [['--json', 'config', 'schema'], 'schema', { json: true }],
    [['config', 'schema', '--json'], 'schema', { json: true }],
    [['config', 'show', 'run.yaml'], 'show', { json: false, file: 'run.yaml', sets: [] }],
    [['config', 'show', 'run.yaml', '--set', 'lr=2e-6'], 'show', { json: false, file: 'run.yaml', sets: ['lr=2e-6'] }],
    [['config', 'show', '--set', 'lr=1e-6', 'x.yaml', '--set=steps=10', '--json'], 'show', { json: true, file: 'x.yaml', sets: ['lr=1e-6', 'steps=10'] }],
    [['--log-level', 'debug', 'config', 'show', 'a.yaml'], 'show', { json: false, file: 'a.yaml', sets: [] }],
    [['config', 'show', 'a.yaml', '--device', 'cuda:1', '--set', 'lr=1'], 'show', { json: false, file: 'a.yaml', sets: ['lr=1'], device: 'cuda:1' }],
  ])('%j', async (argv, action, opts) => {
    expect(await parsed(argv)).toEqual({ action, opts });
  });

  it.each([
    [['config', 'show'], /missing required argument 'spec'/],
    [['config', 'show', 'a.yaml', '--set'], /argument missing/],
    [['config', 'shwo'], /unknown command 'shwo'/],
    [['config', 'show', 'a.yaml', '--sett', 'lr=1'], /unknown option '--sett'/],
    [['config', 'show', 'a.yaml', '--device'], /argument missing/],
    [['--log-level', 'loud', 'config', 'schema'], /Allowed choices are trace, debug/],
  ])('%j is a usage error', async (argv, message) => {
    const errors: string[] = [];
    const program = createProgram();
    program.configureOutput({ writeErr: (s) => void errors.push(s), writeOut: () => {}, outputError: (s, write) => write(s) });
    for (const c of program.commands) c.configureOutput(program.configureOutput());
    for (const c of program.commands.flatMap((c) => c.commands)) c.configureOutput(program.configureOutput());
    await expect(program.parseAsync(['node', 'dbt', ...argv])).rejects.toMatchObject({ exitCode: expect.any(Number) });
    expect(errors.join('')).toMatch(message);
  });
});

describe('dbt config (the built CLI)', () => {
  it('config schema prints a JSON Schema that ajv compiles and that accepts the tiny example', () => {
    const r = runCli(['config', 'schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as object;
    const ajv = new Ajv({ strict: false });
    expect(ajv.validateSchema(schema)).toBe(true);
    const validate = ajv.compile(schema);
    const example = parse(require_('examples/tiny/run.yaml')) as unknown;
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ model: { name: 'x' }, concepts: [], lr_schedular: 1 })).toBe(false);
  });

  it('config show prints the resolved spec as YAML on stdout, equal to loadRunSpec', () => {
    const dir = writeFiles({ 'run.yaml': `preset: object\n${MINIMAL}` });
    const r = runCli(['config', 'show', 'run.yaml', '--set', 'lr=3e-6', '--set', 'output.name=n-{lr}'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('lr: 3e-6\n');
    expect(r.stdout).toContain('betas: [ 0.9, 0.999 ]\n');
    const shown = parse(r.stdout) as Record<string, unknown>;
    expect(shown).toEqual(loadRunSpec(join(dir, 'run.yaml'), ['lr=3e-6', 'output.name=n-{lr}'], { cwd: dir }).spec);
    expect(shown).toMatchObject({ preset: 'object', lr: 3e-6, lr_scheduler: 'constant_with_warmup', output: { name: 'n-3e-6' } });
  });

  it('config show --json prints one JSON result with the run dir and warnings', () => {
    const dir = writeFiles({ 'run.yaml': `${MINIMAL}warmup_steps: 5\n` });
    const r = runCli(['--json', 'config', 'show', 'run.yaml'], { cwd: dir });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ ok: true, command: 'config show', file: join(dir, 'run.yaml'), preset: null, run_dir: join(dir, 'runs', 'run') });
    expect(out.warnings).toEqual([expect.stringMatching(/^run\.yaml:\d+:\d+: warmup_steps: lr_scheduler "constant" ignores warmup_steps/)]);
    expect((out.spec as { lr: number }).lr).toBe(2e-6);
  });

  it('warnings go to stderr in human mode', () => {
    const dir = writeFiles({ 'run.yaml': `${MINIMAL}warmup_steps: 5\n` });
    const r = runCli(['config', 'show', 'run.yaml'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: run\.yaml:7:\d+: warmup_steps: lr_scheduler "constant" ignores warmup_steps/);
  });

  it('a spec with five mistakes: all five on stderr with line numbers, exit 2, no stack trace', () => {
    const text = `preset: persn\n${MINIMAL}lr: fast\nlr_schedular: cosine\nresolution: 500\nwarmup_steps: 2000\n`;
    const dir = writeFiles({ 'bad.yaml': text });
    const r = runCli(['config', 'show', 'bad.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe('error: bad.yaml: 5 problems in the run spec');
    expect(lines.slice(1).map((l) => l.match(/^ {2}bad\.yaml:(\d+):\d+: (\S+):/)?.slice(1))).toEqual([
      ['1', 'preset'],
      ['8', 'lr'],
      ['9', 'lr_schedular'],
      ['10', 'resolution'],
      ['11', 'warmup_steps'],
    ]);
    expect(r.stderr).toContain('did you mean "person"?');
    expect(r.stderr).toContain('did you mean "lr_scheduler"?');
  });

  it('--json errors: one JSON object on stdout with every issue, exit 2', () => {
    const dir = writeFiles({ 'bad.yaml': `${MINIMAL}lr: fast\n` });
    const r = runCli(['config', 'show', 'bad.yaml', '--json', '--set', 'stepz=1'], { cwd: dir });
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout) as { ok: boolean; error: string; issues: { path: string; file: string; line?: number }[] };
    expect(out).toMatchObject({ ok: false, error: 'ConfigError' });
    expect(out.issues.map((i) => [i.file, i.line, i.path])).toEqual([
      ['bad.yaml', 7, 'lr'],
      ['--set stepz=1', undefined, 'stepz'],
    ]);
  });

  it('a missing spec file exits 2 with a one-line reason', () => {
    const r = runCli(['config', 'show', 'nope.yaml'], { cwd: writeFiles({}) });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: cannot read run spec nope.yaml: no such file\n');
  });

  it('config without a subcommand shows its help and exits 2', () => {
    const r = runCli(['config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: dbt config');
  });
});

describe('dbt config show --device (the built CLI)', () => {
  /** CUDA is unavailable on every machine with this (no backend, no driver, or no GPU index 99). */
  const NO_CUDA_ENV = { DBT_CUDA_DEVICE: '99' };
  const here = () => JSON.parse(runCli(['--json', 'devices']).stdout) as { cuda: { available: boolean; reason: string | null }; auto: { device: string; description: string } };
  const show = (args: string[], env?: NodeJS.ProcessEnv, spec = MINIMAL) => runCli(['config', 'show', 'run.yaml', ...args], { cwd: writeFiles({ 'run.yaml': spec }), env });

  it('--device cpu: the spec says cpu, no comment, no warning', () => {
    const r = show(['--device', 'cpu']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('\ndevice: cpu\n');
    expect((parse(r.stdout) as { device: string }).device).toBe('cpu');
  });

  it('--device auto (and the default): a comment says what auto is on this machine; --json says it too', () => {
    const auto = here().auto;
    for (const args of [['--device', 'auto'], [], ['--set', 'device=cpu', '--device', 'auto']]) {
      const r = show(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain(`\ndevice: auto # → ${auto.description} on this machine\n`);
      expect((parse(r.stdout) as { device: string }).device).toBe('auto');
    }
    const j = show(['--device', 'auto', '--json']);
    expect(j.code).toBe(0);
    const out = JSON.parse(j.stdout) as { device: unknown; spec: { device: string }; warnings: string[] };
    expect(out.device).toEqual({ requested: 'auto', resolved: auto.device, description: auto.description, problem: null });
    expect(out.spec.device).toBe('auto');
    expect(out.warnings).toEqual([]);
  });

  it('--device cuda:0: on this machine either the GPU (comment) or the unavailable-CUDA warning; exit 0 either way', () => {
    const h = here();
    const r = show(['--device', 'cuda:0']);
    expect(r.code).toBe(0);
    expect((parse(r.stdout) as { device: string }).device).toBe('cuda:0');
    if (h.cuda.available && h.auto.device === 'cuda:0') {
      expect(r.stdout).toContain(`\ndevice: cuda:0 # → ${h.auto.description} on this machine\n`);
      expect(r.stderr).toBe('');
    } else if (!h.cuda.available) {
      expect(r.stdout).toContain('\ndevice: cuda:0 # unavailable on this machine (see the warning)\n');
      expect(r.stderr).toContain(`warning: --device cuda:0: device: cuda:0 needs CUDA, which is unavailable on this machine: ${h.cuda.reason}`);
    } else expect(r.stdout).toMatch(/\ndevice: cuda:0 # → cuda:0 \(.+\) on this machine\n/);
  });

  it('CUDA asked for where it is unavailable: a clear warning naming the reason, exit 0 (human and --json)', () => {
    const reason = (JSON.parse(runCli(['--json', 'devices'], { env: NO_CUDA_ENV }).stdout) as { cuda: { reason: string } }).cuda.reason;
    const r = show(['--device', 'cuda'], NO_CUDA_ENV);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `warning: --device cuda: device: cuda needs CUDA, which is unavailable on this machine: ${reason}; training will refuse it here (use device: auto, which picks the CPU here, or device: cpu)\n`,
    );
    const inFile = show([], NO_CUDA_ENV, `${MINIMAL}device: cuda:1\n`);
    expect(inFile.code).toBe(0);
    expect(inFile.stderr).toMatch(/^warning: run\.yaml:7:9: device: cuda:1 needs CUDA, which is unavailable on this machine: /);
    const j = show(['--json', '--set', 'device=cuda:0'], NO_CUDA_ENV);
    expect(j.code).toBe(0);
    const out = JSON.parse(j.stdout) as { device: unknown; warnings: string[] };
    expect(out.device).toEqual({ requested: 'cuda:0', resolved: null, description: null, problem: `device cuda:0 requested but CUDA is unavailable: ${reason}` });
    expect(out.warnings).toEqual([expect.stringMatching(/^--set device=cuda:0: device: cuda:0 needs CUDA, which is unavailable on this machine: .+ \(use device: auto/)]);
  });

  it('--device bogus: the schema error with the key path, exit 2 (human and --json)', () => {
    const r = show(['--device', 'bogus']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('error: run.yaml: 1 problem in the run spec\n  --device bogus: device: expected auto, cpu, cuda or cuda:N; got "bogus"\n');
    const j = show(['--device', 'gpu:0', '--json']);
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, error: 'ConfigError', issues: [{ file: '--device gpu:0', path: 'device' }] });
  });
});

function require_(rel: string): string {
  return readFileSyncRoot(rel);
}
import { readFileSync } from 'node:fs';
function readFileSyncRoot(rel: string): string {
  return readFileSync(new URL(`../../${rel}`, import.meta.url), 'utf8');
}
