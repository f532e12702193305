// `npm run bench -- prep [--count 200] [--width 2000] [--height 3000] [--size 512] [--concurrency N] [--seg-count 20]`
//
// 1. Throughput of `dbt prep` without segmentation: `count` generated photo-like JPEGs (width×height) →
//    `size` pad, images per second (the target: ≥ 20/s on the 2-core dev machine).
// 2. Per-image cost of --white-bg at 1024² with the test suite's colour-key ONNX graph (isnetis's contract,
//    NOT isnetis: the real model is a deep network and costs far more per image), and one onnxruntime run.
//
// Fixture generators and the ONNX writer live in test/helpers (TypeScript); they are transpiled with the
// TypeScript compiler into node_modules/.cache/dbt-bench, next to node_modules so `sharp` resolves.
// Generated JPEGs are cached there too. Imports the built ../dist (run `npm run build` first).
import { mkdirSync, readFileSync, writeFileSync, existsSync, readdirSync, rmSync, mkdtempSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import ts from 'typescript';
import sharp from 'sharp';
import ort from 'onnxruntime-node';
import { prepImages, withPrepDefaults } from '../dist/prep/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, 'node_modules', '.cache', 'dbt-bench');

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '200' },
    width: { type: 'string', default: '2000' },
    height: { type: 'string', default: '3000' },
    size: { type: 'string', default: '512' },
    concurrency: { type: 'string', default: String(availableParallelism()) },
    'seg-count': { type: 'string', default: '20' },
  },
});
const count = Number(args.count);
const width = Number(args.width);
const height = Number(args.height);
const size = Number(args.size);
const concurrency = Number(args.concurrency);
const segCount = Math.min(count, Number(args['seg-count']));

/** Transpiles the test helpers to plain ESM (types stripped) and imports them. */
async function loadHelpers() {
  const files = ['test/helpers/images.ts', 'test/helpers/onnx-writer.ts', 'test/prep/seg-model.ts'];
  for (const f of files) {
    const out = join(cache, 'helpers', f.replace(/\.ts$/, '.js'));
    mkdirSync(dirname(out), { recursive: true });
    const js = ts.transpileModule(readFileSync(join(root, f), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
    }).outputText;
    writeFileSync(out, js);
  }
  const at = (f) => pathToFileURL(join(cache, 'helpers', f)).href;
  return { images: await import(at('test/helpers/images.js')), seg: await import(at('test/prep/seg-model.js')) };
}

/**
 * `count` distinct photo-like JPEGs: a few JS-drawn bases with film grain (so a file weighs what a phone
 * photo of that size does, ~1.5 MB: decode cost follows the compressed size), each copy marked with its
 * own block.
 */
async function fixtures(images) {
  const dir = join(cache, `prep-jpeg-grain-${width}x${height}-${count}`);
  if (existsSync(dir) && readdirSync(dir).filter((f) => f.endsWith('.jpg')).length === count) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  process.stderr.write(`generating ${count} ${width}×${height} JPEGs in ${dir} (cached for later runs)…\n`);
  const bases = [];
  const rand = images.prng(7);
  const grain = Buffer.alloc(512 * 512);
  for (let i = 0; i < grain.length; i++) grain[i] = 128 + Math.round((rand() - 0.5) * 30);
  const tile = await sharp(grain, { raw: { width: 512, height: 512, channels: 1 } }).toColourspace('srgb').png().toBuffer();
  for (let s = 0; s < 6; s++) {
    const photo = await images.encodeImage(images.photoLikeImage(width, height, s + 1), 'png');
    bases.push(await sharp(photo).composite([{ input: tile, tile: true, blend: 'overlay' }]).png().toBuffer());
  }
  const jobs = Array.from({ length: count }, (_, i) => i);
  const worker = async () => {
    for (let i = jobs.shift(); i !== undefined; i = jobs.shift()) {
      const mark = { create: { width: 64, height: 64, channels: 3, background: { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 13) % 256 } } };
      const jpg = await sharp(bases[i % bases.length])
        .composite([{ input: mark, left: (i * 53) % (width - 64), top: (i * 97) % (height - 64) }])
        .jpeg({ quality: 90 })
        .toBuffer();
      writeFileSync(join(dir, `photo-${String(i).padStart(4, '0')}.jpg`), jpg);
    }
  };
  await Promise.all(Array.from({ length: availableParallelism() }, worker));
  return dir;
}

function sizeOf(dir) {
  return readdirSync(dir).reduce((n, f) => n + readFileSync(join(dir, f)).length, 0);
}

const { images, seg } = await loadHelpers();
const dir = await fixtures(images);
const work = mkdtempSync(join(tmpdir(), 'dbt-bench-prep-'));
const opts = (o) => withPrepDefaults({ inputs: [dir], size, concurrency, ...o });
try {
  const mb = sizeOf(dir) / 1e6;
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, node ${process.version}, sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}), onnxruntime ${ort.env.versions.node}`);
  console.log(`fixtures: ${count} JPEGs ${width}×${height}, ${mb.toFixed(0)} MB`);

  // Warm-up (loads libraries, fills the page cache), then the timed run.
  const warm = join(work, 'warm');
  await prepImages(withPrepDefaults({ inputs: readdirSync(dir).slice(0, 4).map((f) => join(dir, f)), out: warm, size, concurrency }));
  const plain = await prepImages(opts({ out: join(work, 'plain') }));
  if (!plain.ok) throw new Error(`prep failed: ${JSON.stringify(plain.failures.slice(0, 3))}`);
  const ips = plain.counts.processed / plain.seconds;
  console.log(`prep pad ${size} (no segmentation), concurrency ${concurrency}: ${plain.counts.processed} images in ${plain.seconds.toFixed(2)} s = ${ips.toFixed(1)} images/s (${((1000 * plain.seconds) / plain.counts.processed).toFixed(1)} ms/image wall)`);
  const again = await prepImages(opts({ out: join(work, 'plain') }));
  console.log(`re-run, all unchanged: ${again.counts.skipped} skipped in ${again.seconds.toFixed(2)} s`);

  // Segmentation: the same images with --white-bg through the colour-key graph.
  const model = join(work, 'colour-key.onnx');
  writeFileSync(model, seg.colourKeySegModelBytes({ key: [0, 255, 0] }));
  const subset = readdirSync(dir).filter((f) => f.endsWith('.jpg')).slice(0, segCount).map((f) => join(dir, f));
  const base = await prepImages(withPrepDefaults({ inputs: subset, out: join(work, 'base'), size, concurrency }));
  const white = await prepImages(withPrepDefaults({ inputs: subset, out: join(work, 'white'), size, concurrency, whiteBg: true, segModel: model }));
  if (!white.ok) throw new Error(`prep --white-bg failed: ${JSON.stringify(white.failures.slice(0, 3))}`);
  const perBase = (1000 * base.seconds) / segCount;
  const perWhite = (1000 * white.seconds) / segCount;

  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: availableParallelism() });
  const input = new ort.Tensor('float32', new Float32Array(3 * 1024 * 1024).fill(0.5), [1, 3, 1024, 1024]);
  await session.run({ img: input });
  const runs = 10;
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await session.run({ img: input });
  const perRun = (performance.now() - t0) / runs;
  await session.release();
  console.log(
    `--white-bg at 1024² with the colour-key test graph (NOT isnetis), ${segCount} images, concurrency ${concurrency}: ` +
      `${perWhite.toFixed(1)} ms/image wall vs ${perBase.toFixed(1)} without (+${(perWhite - perBase).toFixed(1)} ms/image); one onnxruntime run ${perRun.toFixed(1)} ms`,
  );
  console.log(
    `summary: prep ${count}×${width}x${height} JPEG → ${size} pad: ${ips.toFixed(1)} images/s (target ≥ 20); ` +
      `segmentation path +${(perWhite - perBase).toFixed(1)} ms/image (test graph, not isnetis; ort run ${perRun.toFixed(1)} ms)`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
