#!/usr/bin/env node
// cuemu/nvcc: compiles a .cu file the way native/cuda/cuda.mk calls nvcc, but for the CPU emulator: the
// source (and the .cu/.cuh/.h files beside it) are copied to <object dir>/cuemu-src with each
// `kernel<<<cfg>>>(args)` rewritten to `::cuemu::launcher(kernel, cfg)(args)` and each
// `extern __shared__ T name[];` to a pointer at the launch's dynamic shared memory, then g++ compiles the
// copy against cuemu/include (found instead of the toolkit's headers). #line keeps file/line of errors
// pointing at the original; the dependency file names the originals.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const pass = [];
const archs = []; // compute capabilities from -gencode: the device code is compiled for the lowest
let src = null;
let out = null;
let depFile = null;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '-gencode') {
    const m = /arch=compute_(\d+)/.exec(args[++i]);
    if (m) archs.push(Number(m[1]));
  } else if (a === '-arch' || a === '--generate-code' || a === '-ccbin') i++;
  else if (a.startsWith('-gencode=') || a.startsWith('-arch=') || a.startsWith('--expt-')) continue;
  else if (a === '-Werror') i++; // nvcc's "-Werror all-warnings": the emulated build keeps warnings warnings
  else if (a === '-Xcompiler') pass.push(...args[++i].split(',').filter((f) => f !== '-Werror'));
  else if (a === '-o') out = args[++i];
  else if (a === '-MF') depFile = args[++i];
  else if (a === '-c') continue;
  else if (a === '--dryrun' || a === '-x') {
    process.stderr.write(`cuemu/nvcc: ${a} is not supported (set CUDA_HOME for the emulated build)\n`);
    process.exit(2);
  } else if (!a.startsWith('-') && /\.(cu|cpp|cc)$/.test(a)) src = a;
  else pass.push(a);
}
if (!src || !out) {
  process.stderr.write('cuemu/nvcc: usage: nvcc [flags] -c file.cu -o file.o\n');
  process.exit(2);
}

// Start of the kernel expression ending just before index `end` (an id-expression, maybe qualified, maybe
// with template arguments), scanning backwards.
function kernelStart(text, end) {
  let i = end;
  while (i > 0 && /\s/.test(text[i - 1])) i--;
  if (text[i - 1] === '>') {
    let depth = 0;
    for (i--; i >= 0; i--) {
      if (text[i] === '>') depth++;
      else if (text[i] === '<' && --depth === 0) break;
    }
    if (i < 0) throw new Error('unbalanced template arguments before <<<');
  }
  while (i > 0 && /[\w:]/.test(text[i - 1])) i--;
  return i;
}

export function rewrite(text) {
  text = text.replace(
    /extern\s+__shared__\s+(?:__align__\(\s*\d+\s*\)\s+)?([\w:][\w:\s]*?)\s+(\w+)\s*\[\s*\]\s*;/g,
    (_, type, name) => `${type}* ${name} = reinterpret_cast<${type}*>(::cuemu::dynamic_smem());`,
  );
  // Static shared arrays start as garbage on a GPU: each block's first thread to reach the declaration
  // fills them with 0xff (cuemu::poison_shared), so a read before any write shows as NaN.
  text = text.replace(
    /__shared__\s+((?:__align__\(\s*\d+\s*\)\s+)?)([A-Za-z_][\w:<>]*(?:\s+[A-Za-z_][\w:<>]*)*?)\s+([A-Za-z_]\w*\s*(?:\[[^\]]*\])+(?:\s*,\s*[A-Za-z_]\w*\s*(?:\[[^\]]*\])+)*)\s*;/g,
    (_, align, type, decls) => {
      const names = decls.split(',').map((d) => /^\s*([A-Za-z_]\w*)/.exec(d)[1]);
      return `__shared__ ${align}${type} ${decls}; ${names.map((n) => `::cuemu::poison_shared(${n});`).join(' ')}`;
    },
  );
  let res = '';
  let pos = 0;
  for (;;) {
    const open = text.indexOf('<<<', pos);
    if (open < 0) break;
    const close = text.indexOf('>>>', open);
    if (close < 0) throw new Error('<<< without >>>');
    const start = kernelStart(text, open);
    if (start < pos) throw new Error('overlapping launches');
    const kernel = text.slice(start, open).trimEnd();
    res += text.slice(pos, start) + `::cuemu::launcher(${kernel}, ${text.slice(open + 3, close)})`;
    pos = close + 3;
  }
  return res + text.slice(pos);
}

function writeIfChanged(path, text) {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

const srcDir = resolve(dirname(src));
const mirror = join(resolve(dirname(out)), 'cuemu-src');
mkdirSync(mirror, { recursive: true });
for (const f of readdirSync(srcDir)) {
  if (!/\.(cu|cuh|h)$/.test(f)) continue;
  const orig = join(srcDir, f);
  let text;
  try {
    text = rewrite(readFileSync(orig, 'utf8'));
  } catch (e) {
    process.stderr.write(`${orig}: cuemu/nvcc cannot rewrite: ${e.message}\n`);
    process.exit(1);
  }
  writeIfChanged(join(mirror, f), `#line 1 "${orig}"\n${text}`);
}

const cxx = process.env.CXX || 'g++';
const cmd = [
  ...pass,
  '-x', 'c++',
  '-D__CUDACC__', `-D__CUDA_ARCH__=${(archs.length ? Math.min(...archs) : 80) * 10}`, '-DDBT_CUEMU',
  `-I${join(here, 'include')}`,
  '-include', 'cuda_runtime.h',
  '-Wno-unknown-pragmas', '-ffp-contract=off',
  '-c', join(mirror, basename(src)), '-o', out,
];
if (depFile && !cmd.includes('-MF')) cmd.push('-MF', depFile);
const r = spawnSync(cxx, cmd, { stdio: 'inherit' });
if (r.error) {
  process.stderr.write(`cuemu/nvcc: cannot run ${cxx}: ${r.error.message}\n`);
  process.exit(1);
}
if (r.status !== 0) process.exit(r.status ?? 1);
if (depFile && existsSync(depFile)) writeFileSync(depFile, readFileSync(depFile, 'utf8').split(mirror).join(srcDir));
