import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { registerCreate, createRequest, type CreateCommandOptions } from '../../src/cli/create.js';
import { registerExport, type ExportCommandOptions } from '../../src/cli/export.js';
import { registerInspect, type InspectCommandOptions } from '../../src/cli/inspect.js';
import { createProgram } from '../../src/cli/program.js';
import { floatToHalfBits } from '../../src/model/dtype.js';
import { expectedTensors } from '../../src/model/keys.js';
import { TINY_ARCH } from '../../src/model/arch.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { BIN, runCli } from '../helpers/cli.js';
import { tempDir } from './helpers.js';

type Registrar = (program: Command, action: (o: never) => void) => void;
const REGISTRARS: Record<string, Registrar> = { create: registerCreate as Registrar, export: registerExport as Registrar, inspect: registerInspect as Registrar };

/** The options an action receives for argv, through the real commander program. */
async function parsed(argv: string[]): Promise<unknown> {
  let got: unknown;
  const program = createProgram();
  const commands = (program as unknown as { commands: Command[] }).commands;
  const name = argv.find((a) => a in REGISTRARS)!;
  commands.splice(commands.findIndex((c) => c.name() === name), 1);
  REGISTRARS[name](program, (o: never) => void (got = o));
  await program.parseAsync(['node', 'dbt', ...argv]);
  return got;
}

const createDefaults: CreateCommandOptions = { json: false, target: 'nanu', half: false, useEma: false, force: false, sets: [], from: undefined, arch: undefined, seed: undefined, scheduler: undefined, tokenizer: undefined };

describe('argv → options', () => {
  it.each<[string[], Partial<CreateCommandOptions>]>([
    [['create', 'nanu', '--from', 'a.safetensors'], { from: 'a.safetensors' }],
    [['create', 'nanu', '--arch', 'tiny', '--seed', '42', '--half'], { arch: 'tiny', seed: 42, half: true }],
    [['--json', 'create', './m/x', '--from', 'd', '--use-ema', '--scheduler', 'euler_a', '--tokenizer', 'tok', '--force'], { json: true, target: './m/x', from: 'd', useEma: true, scheduler: 'euler_a', tokenizer: 'tok', force: true }],
    [['create', 'run.yaml', '--set', 'model.seed=3', '--set', 'model.half=true'], { target: 'run.yaml', sets: ['model.seed=3', 'model.half=true'] }],
  ])('create %j', async (argv, expected) => {
    expect(await parsed(argv)).toEqual({ ...createDefaults, ...(argv.includes('./m/x') ? {} : { target: argv[argv.indexOf('create') + 1] }), ...expected });
  });

  it.each<[string[], Partial<ExportCommandOptions>]>([
    [['export', 'nanu', '--out', 'o.safetensors'], {}],
    [['export', 'nanu', '--out', 'o.safetensors', '--half', '--ema'], { dtype: 'F16', ema: true }],
    [['export', 'nanu', '--out', 'o.safetensors', '--bf16', '--title', 'Nanu v1'], { dtype: 'BF16', title: 'Nanu v1' }],
    [['export', 'nanu', '--out', 'dir', '--format', 'diffusers', '--fp32', '--force'], { out: 'dir', format: 'diffusers', dtype: 'F32', force: true }],
    [['export', 'nanu', '--out', 'o.safetensors', '--hash'], { hash: true }],
    [['export', 'nanu', '--out', 'o.safetensors', '--no-hash'], { hash: false }],
  ])('export %j', async (argv, expected) => {
    expect(await parsed(argv)).toEqual({ json: false, source: 'nanu', out: 'o.safetensors', format: 'safetensors', dtype: undefined, ema: false, title: undefined, tokenizer: undefined, force: false, hash: false, ...expected });
  });

  it.each<[string[], Partial<InspectCommandOptions>]>([
    [['inspect', 'f.ckpt'], {}],
    [['inspect', 'f.ckpt', '--scan', '--no-hash'], { scan: true, hash: false }],
    [['--json', 'inspect', 'f.ckpt', '--tokenizer', 't'], { json: true, tokenizer: 't' }],
  ])('inspect %j', async (argv, expected) => {
    expect(await parsed(argv)).toEqual({ json: false, path: 'f.ckpt', scan: false, hash: true, tokenizer: undefined, ...expected });
  });

  it.each([
    [['create', 'x', '--arch', 'sdxl'], /Allowed choices are tiny, sd15/],
    [['create', 'x', '--arch', 'tiny', '--seed', '-1'], /the seed must be a non-negative integer/],
    [['export', 'x'], /required option '--out <path>' not specified/],
    [['export', 'x', '--out', 'y', '--half', '--bf16'], /option '--half' cannot be used with option '--bf16'/],
    [['export', 'x', '--out', 'y', '--format', 'ckpt'], /Allowed choices are safetensors, diffusers/],
  ])('%j is a usage error (exit 2)', (argv, message) => {
    const r = runCli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('create: names go under models/, paths stay paths, and the request must say where from', () => {
    expect(createRequest({ ...createDefaults, arch: 'tiny' }, '/w').request.dir).toBe('/w/models/nanu');
    expect(createRequest({ ...createDefaults, target: 'out/m', arch: 'tiny' }, '/w').request.dir).toBe('/w/out/m');
    expect(() => createRequest(createDefaults, '/w')).toThrow(/--from <checkpoint\|folder> or --arch tiny\|sd15/);
    expect(() => createRequest({ ...createDefaults, sets: ['model.seed=1'], arch: 'tiny' }, '/w')).toThrow(/--set needs a run spec/);
    expect(() => createRequest({ ...createDefaults, target: 'run.yaml', arch: 'tiny' }, '/w')).toThrow(/set the model through the spec .*\(not --arch\)/);
  });
});

describe('create → export → create through the built CLI', () => {
  const dir = tempDir();
  const cli = (...args: string[]) => runCli(args, { cwd: dir });

  it('round trip: f32 export re-creates byte-identical tensors; the f16 export is their rounding', async () => {
    expect(cli('create', 'nanu', '--arch', 'tiny', '--seed', '5').code).toBe(0);
    const ex = cli('--json', 'export', 'nanu', '--out', 'out/nanu.safetensors', '--hash');
    expect(ex.code, ex.stderr).toBe(0);
    const result = JSON.parse(ex.stdout);
    expect(result).toMatchObject({ ok: true, format: 'safetensors', dtype: 'F32', tensors: 447 });
    expect(result.metadata).toMatchObject({ 'modelspec.architecture': 'stable-diffusion-v1', 'modelspec.sai_model_spec': '1.0.0', 'modelspec.title': 'nanu', 'dbt.source': 'random tiny seed 5' });
    expect(result.hashes.a1111).toHaveLength(10);

    const file = await SafetensorsFile.open(join(dir, 'out/nanu.safetensors'));
    try {
      expect(file.keys().sort()).toEqual(expectedTensors(TINY_ARCH).map((t) => t.key).sort());
      for (const t of expectedTensors(TINY_ARCH)) expect(file.entry(t.key).shape, t.key).toEqual(t.shape);
    } finally {
      await file.close();
    }
    expect(cli('create', 'again', '--from', 'out/nanu.safetensors').code).toBe(0);
    for (const f of ['unet', 'vae', 'text_encoder']) {
      expect(readFileSync(join(dir, 'models/again', `${f}.safetensors`)).equals(readFileSync(join(dir, 'models/nanu', `${f}.safetensors`))), f).toBe(true);
    }
    const again = JSON.parse(readFileSync(join(dir, 'models/again/model.json'), 'utf8'));
    expect(again.source).toMatchObject({ kind: 'file', format: 'safetensors', a1111_hash: result.hashes.a1111, a1111_legacy_hash: result.hashes.a1111_legacy, sha256: result.hashes.sha256, used_ema: false });
    // The export hashes while writing; they equal a second pass over the file.
    const { createHash } = await import('node:crypto');
    const bytes = readFileSync(join(dir, 'out/nanu.safetensors'));
    expect(result.hashes.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(result.hashes.a1111_legacy).toBe(createHash('sha256').update(bytes.subarray(0x100000, 0x110000)).digest('hex').slice(0, 8));

    const half = cli('--json', 'export', 'nanu', '--out', 'out/half.safetensors', '--half');
    expect(half.code, half.stderr).toBe(0);
    expect(JSON.parse(half.stdout).hashes, 'no hash without --hash').toBeUndefined();
    const f32 = await SafetensorsFile.open(join(dir, 'out/nanu.safetensors'));
    const f16 = await SafetensorsFile.open(join(dir, 'out/half.safetensors'));
    try {
      for (const key of f32.keys()) {
        const e = f32.entry(key);
        if (e.dtype === 'I64') {
          expect(f16.entry(key).dtype).toBe('I64');
          continue;
        }
        expect(f16.entry(key).dtype).toBe('F16');
        const expected = [...(await f32.readF32(key))].map(floatToHalfBits);
        expect([...new Uint16Array(new Uint8Array(await f16.readRaw(key)).buffer)], key).toEqual(expected);
      }
    } finally {
      await f32.close();
      await f16.close();
    }
  });

  it('inspect --json describes the export; --scan finds no NaN/Inf', () => {
    const r = cli('--json', 'inspect', 'out/nanu.safetensors', '--scan');
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep).toMatchObject({ format: 'safetensors', architecture: { family: 'SD1.x', supported: true, arch: { name: 'tiny' } }, ema: { present: false }, tokenizer: { found: true, source: 'tiny' } });
    expect(rep.components.unet).toEqual({ tensors: 286, params: 1055044, dtypes: { F32: 286 } });
    expect(rep.scan).toEqual({ tensors: 446, nan: [], inf: [] });
    const human = cli('inspect', 'out/nanu.safetensors', '--no-hash');
    expect(human.stdout).toMatch(/architecture +tiny \(test model\)/);
    expect(human.stdout).toMatch(/modelspec.title: nanu/);
  });

  it('dbt create run.yaml makes the spec\'s model (plain names under models/ next to the cwd)', () => {
    writeFileSync(join(dir, 'run.yaml'), ['model:', '  name: fromspec', '  arch: tiny', '  seed: 5', 'concepts:', '  - instance_prompt: nanU Unan', '    instance_dir: data/nanu', 'steps: 10', ''].join('\n'));
    mkdirSync(join(dir, 'data/nanu'), { recursive: true });
    const r = cli('--json', 'create', 'run.yaml', '--set', 'model.half=true');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ dir: join(dir, 'models/fromspec'), arch: 'tiny', dtype: 'F16', source: { kind: 'random', seed: 5 } });
    const neither = cli('--json', 'create', 'run.yaml', '--set', 'model.arch=null');
    expect(neither.code).toBe(2);
    expect(JSON.parse(neither.stdout)).toMatchObject({ error: 'ConfigError', issues: [{ path: 'model', message: expect.stringMatching(/give model.from .* or model.arch/) }] });
    const bad = cli('create', 'run.yaml', '--set', 'model.arch=sd99');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/model.arch/);
  });

  it('failures: existing model (exit 2, untouched), missing source, non-model file, wrong --out', () => {
    const before = readFileSync(join(dir, 'models/nanu/unet.safetensors'));
    const exists = cli('create', 'nanu', '--arch', 'tiny', '--seed', '9');
    expect(exists.code).toBe(2);
    expect(exists.stderr).toMatch(/already exists; choose another name, remove it, or pass --force/);
    expect(readFileSync(join(dir, 'models/nanu/unet.safetensors')).equals(before)).toBe(true);
    // An existing destination is refused before the source is hashed or read (it may be gigabytes).
    writeFileSync(join(dir, 'unreadable.safetensors'), 'not a model');
    const early = cli('create', 'nanu', '--from', 'unreadable.safetensors');
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/already exists/);
    expect(early.stderr).not.toMatch(/hashing|header length/);
    const missing = cli('create', 'x', '--from', 'nope.safetensors');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope.safetensors does not exist/);
    writeFileSync(join(dir, 'junk.safetensors'), 'this is not a model');
    const junk = cli('create', 'y', '--from', 'junk.safetensors');
    expect(junk.code).toBe(1);
    expect(junk.stderr).toMatch(/junk.safetensors: header length \d+ exceeds the 100 MB limit/);
    expect(junk.stderr).not.toMatch(/\n\s+at /);
    const ext = cli('export', 'nanu', '--out', 'x.ckpt');
    expect(ext.code).toBe(2);
    expect(ext.stderr).toMatch(/must end in .safetensors/);
    expect(existsSync(join(dir, 'models/y'))).toBe(false);
  });

  it('an export that cannot be written completely (file-size limit) says why and leaves no partial file', () => {
    // `ulimit -f` (512-byte blocks) makes writes past 1 MiB fail with EFBIG, as a full disk fails with ENOSPC:
    // the header is written, the in-kernel copy of the UNet's tensors fails part way.
    const r = spawnSync('sh', ['-c', `ulimit -f 2048 && exec "${process.execPath}" "${BIN}" export nanu --out out/limited.safetensors`], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cannot write .*limited\.safetensors: the file is larger than this system allows \(EFBIG.*\) after 1\.05 of [\d.]+ MB; the partial file was removed/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(readdirSync(join(dir, 'out')).filter((f) => f.includes('limited'))).toEqual([]);
  });
});

describe('SD1.5 sizes without SD1.5 costs', () => {
  it('a sparse SD1.5-shaped f16 file is detected as SD1.x with the exact key set and published parameter counts', async () => {
    const { buildSafetensorsHeader } = await import('../../src/model/safetensors.js');
    const { SD15_ARCH } = await import('../../src/model/arch.js');
    const { openSync, writeSync, ftruncateSync, closeSync } = await import('node:fs');
    const dir = tempDir();
    const specs = expectedTensors(SD15_ARCH).map((t) => ({ key: t.key, dtype: t.dtype === 'I64' ? ('I64' as const) : ('F16' as const), shape: t.shape }));
    const { header, dataBytes } = buildSafetensorsHeader(specs);
    const path = join(dir, 'sd15-sparse.safetensors');
    const fd = openSync(path, 'w');
    writeSync(fd, header, 0, header.length, 0);
    ftruncateSync(fd, header.length + dataBytes); // 2.1 GB of zeros that take no disk
    closeSync(fd);
    const r = runCli(['--json', 'inspect', path, '--no-hash']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.architecture.arch).toEqual({ ...SD15_ARCH, name: 'sd1' });
    expect(rep.components.unet).toEqual({ tensors: 686, params: 859_520_964, dtypes: { F16: 686 } });
    expect(rep.components.vae).toEqual({ tensors: 248, params: 83_653_863, dtypes: { F16: 248 } });
    expect(rep.components.text_encoder).toEqual({ tensors: 197, params: 123_060_480, dtypes: { F16: 196, I64: 1 } });
    const { openWeights } = await import('../../src/model/weights.js');
    const w = await openWeights(path);
    try {
      expect([...w.tensors.keys()]).toEqual(expectedTensors(SD15_ARCH).map((t) => t.key));
    } finally {
      await w.close();
    }
  });
});

describe('inspect flags what is suspicious', () => {
  it('--scan names tensors with NaN or Inf; a hostile .ckpt lists the code it references without running it', async () => {
    const { writeSafetensors } = await import('../../src/model/safetensors.js');
    const { torchSave } = await import('./torch-writer.js');
    const { PickleWriter } = await import('./torch-writer.js');
    const dir = tempDir();
    const bad = new Float32Array([1, NaN, 3, 4]);
    const inf = new Float32Array([1, 2, -Infinity, 4]);
    await writeSafetensors(join(dir, 'nan.safetensors'), [
      { key: 'model.diffusion_model.a', dtype: 'F32', shape: [4], data: new Uint8Array(bad.buffer) },
      { key: 'first_stage_model.b', dtype: 'F32', shape: [4], data: new Uint8Array(inf.buffer) },
      { key: 'ok', dtype: 'F32', shape: [1], data: new Uint8Array(4) },
    ]);
    const r = runCli(['--json', 'inspect', join(dir, 'nan.safetensors'), '--scan']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout);
    expect(rep.scan).toEqual({ tensors: 3, nan: ['model.diffusion_model.a'], inf: ['first_stage_model.b'] });
    expect(rep.architecture.supported).toBe(false);
    expect(rep.architecture.problem).toMatch(/checkpoint has no text encoder weights/);

    const marker = join(dir, 'RAN');
    const ckpt = torchSave([{ key: 'w', dtype: 'F32', shape: [1], storage: new Uint8Array(4) }], {
      extra: [(p: InstanceType<typeof PickleWriter>) => (p.str('x'), p.global('os', 'system').mark().str(`touch ${marker}`).tuple().reduce())],
    });
    writeFileSync(join(dir, 'evil.ckpt'), ckpt);
    const h = runCli(['inspect', join(dir, 'evil.ckpt')]);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/SUSPICIOUS +the pickle references code dbt did not run: os\.system/);
    expect(existsSync(marker)).toBe(false);
  });
});
