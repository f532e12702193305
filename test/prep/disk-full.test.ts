/**
 * A full disk (or read-only output folder) stops prep as a whole with one clear message, instead of failing
 * every remaining image one by one. The file system is real; only `writeFile` is made to fail once the
 * output folder "fills up", the way the kernel would (a disk cannot be filled portably in a test).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { encodeImage, noiseImage } from '../helpers/images.js';

const budget = { writes: Infinity };
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const writeFile: typeof real.writeFile = async (file, data, options) => {
    if (String(file).includes('.dbt-tmp-') && String(file).endsWith('.png') && budget.writes-- <= 0) {
      throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    }
    return real.writeFile(file, data, options);
  };
  return { ...real, default: { ...real, writeFile }, writeFile };
});

const { prepImages, withPrepDefaults } = await import('../../src/prep/index.js');
const { DbtError } = await import('../../src/errors.js');

const dir = mkdtempSync(join(tmpdir(), 'dbt-prep-full-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prep on a full disk', () => {
  it('stops at the first ENOSPC with one message, keeps no temporaries, and the same command continues later', async () => {
    mkdirSync(join(dir, 'raw'));
    for (let i = 0; i < 8; i++) writeFileSync(join(dir, 'raw', `img${i}.png`), await encodeImage(noiseImage(48, 40, i + 1), 'png'));
    const options = withPrepDefaults({ inputs: [join(dir, 'raw')], out: join(dir, 'out'), size: 64, concurrency: 1 });
    budget.writes = 3; // three images fit, then the disk is full (the manifest still fits: it is written after)
    let err: unknown;
    try {
      await prepImages(options);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DbtError);
    expect((err as Error).message).toMatch(/cannot write to .*out: the disk is full \(ENOSPC\); the images finished so far are recorded/);
    budget.writes = Infinity;
    const out = readdirSync(join(dir, 'out'));
    expect(out.filter((f) => f.startsWith('.'))).toEqual([]);
    expect(out.filter((f) => f.endsWith('.png'))).toHaveLength(3);
    expect(JSON.parse(readFileSync(join(dir, 'out', 'prep.json'), 'utf8')).images).toHaveLength(3);
    const again = await prepImages(options);
    expect(again.counts).toMatchObject({ processed: 5, skipped: 3, failed: 0 });
    expect(existsSync(join(dir, 'out', 'img7.png'))).toBe(true);
  });
});
