import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { removeTemporaries } from '../../src/cli/interrupt.js';
import { BIN } from '../helpers/cli.js';
import { tempDir } from '../model/helpers.js';

describe('removeTemporaries', () => {
  it("removes this process's temporaries of the targets (files and folders), nothing else", () => {
    const dir = tempDir('dbt-int-');
    const pid = 4242;
    mkdirSync(join(dir, `.nanu.tmp-${pid}-0a1b2c3d`));
    writeFileSync(join(dir, `.nanu.tmp-${pid}-0a1b2c3d`, 'unet.safetensors'), 'partial');
    writeFileSync(join(dir, `.out.safetensors.tmp-${pid}-deadbeef`), 'partial');
    writeFileSync(join(dir, `.out.safetensors.tmp-${pid + 1}-deadbeef`), 'another process');
    writeFileSync(join(dir, 'out.safetensors'), 'complete');
    writeFileSync(join(dir, '.other.tmp-4242-00000000'), 'not a target');
    const removed = removeTemporaries([join(dir, 'nanu'), join(dir, 'out.safetensors')], pid);
    expect(removed.map((p) => p.slice(dir.length + 1)).sort()).toEqual([`.nanu.tmp-${pid}-0a1b2c3d`, `.out.safetensors.tmp-${pid}-deadbeef`]);
    expect(readdirSync(dir).sort()).toEqual(['.other.tmp-4242-00000000', `.out.safetensors.tmp-${pid + 1}-deadbeef`, 'out.safetensors']);
    expect(readFileSync(join(dir, 'out.safetensors'), 'utf8')).toBe('complete');
  });

  it('puts back a model folder moved aside for --force when the new one is not in place yet', () => {
    const dir = tempDir('dbt-int-');
    const pid = 7;
    mkdirSync(join(dir, `.nanu.tmp-${pid}-11111111`));
    mkdirSync(join(dir, `.nanu.tmp-${pid}-11111111-old`));
    writeFileSync(join(dir, `.nanu.tmp-${pid}-11111111-old`, 'model.json'), '{"old":true}');
    removeTemporaries([join(dir, 'nanu')], pid);
    expect(readdirSync(dir)).toEqual(['nanu']);
    expect(readFileSync(join(dir, 'nanu', 'model.json'), 'utf8')).toBe('{"old":true}');
  });
});

describe('Ctrl-C during dbt create', () => {
  it('exits 130, says so, and leaves no hidden half-written model folder', async () => {
    const dir = tempDir('dbt-int-');
    // An SD1.5-size random model takes many seconds to write: interrupt it as soon as its temporary exists.
    const child = spawn(process.execPath, [BIN, '--json', 'create', 'big', '--arch', 'sd15', '--half'], { cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const models = join(dir, 'models');
    const deadline = Date.now() + 60_000;
    while (!(existsSync(models) && readdirSync(models).some((n) => n.startsWith('.big.tmp-'))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(readdirSync(models)).toEqual([]);
    expect(stderr).toMatch(/error: interrupted; removed the unfinished \.big\.tmp-/);
    expect(JSON.parse(stdout)).toMatchObject({ ok: false, error: 'InterruptedError' });
  }, 90_000);
});
