/** `dbt prep`: argv → options as a table, and the real CLI as a child process (exit codes, --json, Ctrl-C). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { declarePrepCommand, prepRequestFromArgs, stopThenForce, type PrepFlags, type PrepRequest } from '../../src/cli/prep.js';
import { createOutput } from '../../src/cli/output.js';
import { defaultConcurrency, type Manifest, type PrepOptions } from '../../src/prep/index.js';
import { UsageError } from '../../src/errors.js';
import { BIN, runCli } from '../helpers/cli.js';
import { encodeImage, noiseImage, renderScene, sha256 } from '../helpers/images.js';
import { colourKeySegModelBytes } from './seg-model.js';

/** argv → request the way `register` does it, with the real flag declarations. */
async function request(argv: string[]): Promise<PrepRequest> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  let req: PrepRequest | undefined;
  declarePrepCommand(program).action((inputs: string[], flags: PrepFlags, cmd: Command) => {
    const explicit = cmd.options.map((o) => o.attributeName()).filter((k) => cmd.getOptionValueSource(k) === 'cli');
    req = prepRequestFromArgs(inputs, flags, explicit);
  });
  await program.parseAsync(['node', 'dbt', 'prep', ...argv]);
  return req!;
}

async function parse(argv: string[]): Promise<PrepOptions> {
  const req = await request(argv);
  if (req.kind !== 'flags') throw new Error(`expected the flag form, got ${JSON.stringify(req)}`);
  return req.options;
}

describe('dbt prep argv → options', () => {
  const defaults = {
    inputs: ['raw'],
    out: 'data/x',
    size: 512,
    fit: 'pad',
    bg: [255, 255, 255],
    whiteBg: false,
    segModel: undefined,
    maskThreshold: undefined,
    maskFeather: 0,
    keepAlpha: false,
    margin: 0.05,
    caption: undefined,
    captionPrefix: undefined,
    recursive: false,
    maxPixels: 268_402_689,
    force: false,
    minSubjectFraction: 0.1,
    concurrency: defaultConcurrency(),
  };
  it.each<[string[], Partial<PrepOptions>]>([
    [['raw', '--out', 'data/x'], {}],
    [['raw', 'more/a.png', '--out', 'data/x'], { inputs: ['raw', 'more/a.png'] }],
    [['raw', '--out', 'data/x', '--size', '768'], { size: 768 }],
    [['raw', '--out', 'data/x', '--fit', 'subject', '--margin', '0.1'], { fit: 'subject', margin: 0.1 }],
    [['raw', '--out', 'data/x', '--fit', 'crop'], { fit: 'crop' }],
    [['raw', '--out', 'data/x', '--bg', '#000'], { bg: [0, 0, 0] }],
    [['raw', '--out', 'data/x', '--bg', 'rgb(1, 2, 3)'], { bg: [1, 2, 3] }],
    [['raw', '--out', 'data/x', '--bg', '10,20,30'], { bg: [10, 20, 30] }],
    [['raw', '--out', 'data/x', '--bg', 'Grey'], { bg: [128, 128, 128] }],
    [['raw', '--out', 'data/x', '--white-bg'], { whiteBg: true }],
    [['raw', '--out', 'data/x', '--white-bg', '--seg-model', 'm.onnx', '--mask-threshold', '0.5', '--mask-feather', '1.5'], { whiteBg: true, segModel: 'm.onnx', maskThreshold: 0.5, maskFeather: 1.5 }],
    [['raw', '--out', 'data/x', '--keep-alpha'], { keepAlpha: true }],
    [['raw', '--out', 'data/x', '--caption', 'a photo', '--caption-prefix', 'nanU Unan'], { caption: 'a photo', captionPrefix: 'nanU Unan' }],
    [['raw', '--out', 'data/x', '-r', '--force'], { recursive: true, force: true }],
    [['raw', '--out', 'data/x', '--recursive'], { recursive: true }],
    [['raw', '--out', 'data/x', '--max-pixels', '50_000_000'], { maxPixels: 50_000_000 }],
    [['raw', '--out', 'data/x', '--max-pixels', '2e7'], { maxPixels: 20_000_000 }],
    [['raw', '--out', 'data/x', '--min-subject-fraction', '0.25', '--concurrency', '3'], { minSubjectFraction: 0.25, concurrency: 3 }],
  ])('%j', async (argv, expected) => {
    expect(await parse(argv)).toEqual({ ...defaults, ...expected });
  });

  it.each<[string[], RegExp]>([
    [['raw'], /--out <dir> is required/],
    [['raw', '--out', 'x', '--size', 'big'], /--size big: expected a whole number/],
    [['raw', '--out', 'x', '--size', '512.5'], /--size 512.5: expected a whole number/],
    [['raw', '--out', 'x', '--margin', '5%'], /--margin 5%: expected a number/],
    [['raw', '--out', 'x', '--bg', 'chartreuse-ish'], /--bg "chartreuse-ish": not a colour/],
    [['raw', '--out', 'x', '--bg', '#12345'], /not a colour/],
    [['raw', '--out', 'x', '--bg', '300,0,0'], /not a colour/],
    [['raw', '--out', 'x', '--mask-threshold', '0.5'], /use them with --white-bg/],
    [['raw', '--out', 'x', '--set', 'prep.size=768'], /--set overrides a run spec value/],
    [['run.yaml', 'raw'], /a run spec \(run.yaml\) is given alone/],
    [['run.yaml', '--size', '768', '--white-bg'], /--size, --white-bg: with a run spec, prep options come from its prep section/],
    [['run.yml', '--out', 'x'], /--out: with a run spec/],
  ])('%j is a usage error', async (argv, pattern) => {
    const err = await request(argv).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(pattern);
  });

  it.each<[string[], PrepRequest]>([
    [['run.yaml'], { kind: 'spec', file: 'run.yaml', sets: [], concurrency: defaultConcurrency() }],
    [['specs/Run.YML', '--set', 'prep.size=768', '--set', 'prep.fit=crop', '--concurrency', '1'], { kind: 'spec', file: 'specs/Run.YML', sets: ['prep.size=768', 'prep.fit=crop'], concurrency: 1 }],
  ])('run spec form %j', async (argv, expected) => {
    expect(await request(argv)).toEqual(expected);
  });

  it('rejects an unknown --fit through commander', async () => {
    await expect(parse(['raw', '--out', 'x', '--fit', 'stretch'])).rejects.toThrow(/Allowed choices are pad, crop, subject/);
  });
});

describe('Ctrl-C handling', () => {
  it('the first signal asks for a clean stop, a second one stops at once', () => {
    const controller = new AbortController();
    let forced = 0;
    const said: string[] = [];
    const output = createOutput(false, { stdout: { write: () => true }, stderr: { write: (s: string) => said.push(s) } });
    const onSignal = stopThenForce(controller, output, () => void forced++);
    onSignal();
    expect(controller.signal.aborted).toBe(true);
    expect(forced).toBe(0);
    expect(said.join('')).toMatch(/stopping: .*\(Ctrl-C again to stop at once\)/);
    onSignal();
    expect(forced).toBe(1);
  });
});

describe('dbt prep (CLI)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dbt-prep-cli-'));
    mkdirSync(join(dir, 'raw'));
    const scene = renderScene({ width: 40, height: 30, background: [0, 255, 0], subject: { left: 10, top: 5, width: 20, height: 20, colour: [200, 0, 0] } });
    writeFileSync(join(dir, 'raw', 'good.png'), await encodeImage(scene, 'png'));
    writeFileSync(join(dir, 'raw', 'good.txt'), 'nanU, 1girl');
    writeFileSync(join(dir, 'model.onnx'), colourKeySegModelBytes({ key: [0, 255, 0] }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prepares a folder, prints one JSON report with --json, exits 0', () => {
    const r = runCli(['prep', 'raw', '--out', 'out', '--size', '64', '--white-bg', '--seg-model', 'model.onnx', '--json'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: true, command: 'prep', out: 'out', manifest: 'out/prep.json', counts: { processed: 1, failed: 0 } });
    expect(report.images[0]).toMatchObject({ source: 'raw/good.png', output: 'out/good.png', caption: 'out/good.txt' });
    expect(report.images[0].subject.from).toBe('segmentation');
    expect(report.framing).toEqual({ full_body: 1, bust_up: 0, without_mask: 0 });
    expect(Object.keys(report)).toEqual(expect.arrayContaining(['near_duplicates', 'images_per_second']));
    expect(JSON.stringify(report)).not.toMatch(/"[a-z]+[A-Z]\w*":/); // no camelCase key anywhere
    expect(readFileSync(join(dir, 'out', 'good.txt'), 'utf8')).toBe('nanU, 1girl\n');
  });

  it('a run with a broken file: the others are prepared, the report names it, exit 1 with one JSON document', () => {
    const raw = join(dir, 'mixed');
    mkdirSync(raw, { recursive: true });
    writeFileSync(join(raw, 'ok.png'), readFileSync(join(dir, 'raw', 'good.png')));
    writeFileSync(join(raw, 'broken.png'), readFileSync(join(dir, 'raw', 'good.png')).subarray(0, 60));
    const human = runCli(['prep', 'mixed', '--out', 'mixed-out', '--size', '64'], { cwd: dir });
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/processed 1, skipped 0 \(unchanged\), failed 1/);
    expect(human.stderr).toMatch(/mixed\/broken\.png: truncated or corrupt image/);
    expect(human.stderr).toMatch(/error: 1 of 2 sources failed/);
    expect(human.stderr).not.toMatch(/\n\s+at /);
    const json = runCli(['prep', 'mixed', '--out', 'mixed-out', '--size', '64', '--json'], { cwd: dir });
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout); // exactly one document
    expect(report.ok).toBe(false);
    expect(report.failures).toEqual([{ source: 'mixed/broken.png', reason: expect.stringMatching(/truncated or corrupt/) }]);
    expect(report.counts).toMatchObject({ skipped: 1, failed: 1 });
    expect(json.stderr).toMatch(/error: 1 of 2 sources failed \(see "failures" in the JSON report\)/);
  });

  it('usage errors exit 2 without a stack trace', () => {
    for (const args of [
      ['prep', 'raw', '--out', 'raw'],
      ['prep', 'raw', '--out', 'o', '--size', '100'],
      ['prep', 'raw'],
      ['prep', 'raw', '--out', 'o', '--fit', 'stretch'],
      ['prep', 'raw', '--out', 'model.onnx'],
    ]) {
      const r = runCli(args, { cwd: dir });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('a missing segmentation model exits 2 and says where to put it', () => {
    const r = runCli(['prep', 'raw', '--out', 'o2', '--white-bg'], { cwd: dir, env: { DBT_SEG_MODEL: '', XDG_CACHE_HOME: join(dir, 'cache') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(join(dir, 'cache', 'dbt', 'isnetis.onnx'));
    expect(r.stderr).toContain('huggingface.co/skytnt/anime-seg');
  });

  it('Ctrl-C: exits 130, leaves no partial file, keeps what was finished, and the next run does the rest', async () => {
    const raw = join(dir, 'many');
    mkdirSync(raw, { recursive: true });
    // One heavy-to-decode image under many names: enough work that the signal lands mid-run.
    const png = await encodeImage(noiseImage(1200, 1200, 3), 'png');
    const total = 40;
    for (let i = 0; i < total; i++) writeFileSync(join(raw, `img-${String(i).padStart(2, '0')}.png`), png);
    const out = join(dir, 'many-out');
    const child = spawn(process.execPath, [BIN, 'prep', raw, '--out', out, '--size', '64', '--concurrency', '1'], {
      env: { ...process.env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!(existsSync(out) && readdirSync(out).some((f) => f.endsWith('.png') && !f.startsWith('.')))) {
      if (Date.now() > deadline) throw new Error(`no output appeared; stderr: ${stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGINT');
    const code = await exited;
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/interrupted: \d+ of 40 sources were finished/);
    const files = readdirSync(out);
    expect(files.filter((f) => f.startsWith('.'))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(out, 'prep.json'), 'utf8')) as Manifest;
    const pngs = files.filter((f) => f.endsWith('.png') && !f.startsWith('.')).sort();
    expect(pngs.length).toBeGreaterThan(0);
    expect(pngs.length).toBeLessThan(total);
    // Every image present is complete and recorded; nothing unrecorded was left behind.
    expect(manifest.images.map((e) => e.output).sort()).toEqual(pngs);
    for (const e of manifest.images) expect(sha256(readFileSync(join(out, e.output)))).toBe(e.outputSha256);

    const rest = runCli(['prep', raw, '--out', out, '--size', '64', '--json'], { cwd: dir });
    expect(rest.code).toBe(0);
    expect(JSON.parse(rest.stdout).counts).toEqual({ sources: total, processed: total - pngs.length, skipped: pngs.length, failed: 0, ignored: 0 });
  });
});
