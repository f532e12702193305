#!/usr/bin/env node
// Builds the native core (make -C native lib) and the N-API addon (node-gyp), incrementally.
// Run by `npm install` (install script) and `npm run build`. No network: node-gyp builds against the
// headers of the running Node (npm's nodedir setting or node-gyp's cache).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..'); // package root
const jobs = process.env.DBT_BUILD_JOBS ?? '2';

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (r.error) {
    process.stderr.write(`build-native: cannot run ${cmd}: ${r.error.message}\n`);
    process.exit(1);
  }
  if (r.status !== 0) {
    process.stderr.write(`build-native: ${cmd} ${args.join(' ')} failed (exit ${r.status})\n`);
    process.exit(r.status ?? 1);
  }
}

// npm exposes its bundled node-gyp to scripts; otherwise use npm's copy next to this node, or PATH.
function findGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  for (const c of candidates) if (c && existsSync(c)) return [process.execPath, [c]];
  return ['node-gyp', []];
}
const gyp = findGyp();

// Build against the running Node's own headers when they are installed (no download); npm passes its
// nodedir setting through npm_config_nodedir, which node-gyp reads itself.
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefixes = [process.config.variables.node_prefix, join(dirname(process.execPath), '..')];
  for (const prefix of prefixes)
    if (prefix && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return [`--nodedir=${prefix}`];
  return [];
}

run('make', ['-C', 'native', `-j${jobs}`, 'lib']);
// binding.gyp lists native/src/api/*.cpp and reads native/out/link-flags.txt (the libraries a backend such
// as CUDA needs) when configured: configure again when a source is new to it or the link flags changed.
const linkFlags = readFileSync(join(root, 'native', 'out', 'link-flags.txt'), 'utf8');
const configuredFlags = join(root, 'build', 'configured-link-flags.txt');
function configured() {
  const mk = join(root, 'build', 'dbt_native.target.mk');
  if (!existsSync(join(root, 'build', 'Makefile')) || !existsSync(mk)) return false;
  if (!existsSync(configuredFlags) || readFileSync(configuredFlags, 'utf8') !== linkFlags) return false;
  const text = readFileSync(mk, 'utf8');
  return readdirSync(join(root, 'native', 'src', 'api'))
    .filter((f) => f.endsWith('.cpp'))
    .every((f) => text.includes(f.slice(0, -4)));
}
if (!configured()) {
  run(gyp[0], [...gyp[1], 'configure', ...nodedirArgs()]);
  writeFileSync(configuredFlags, linkFlags);
}
// gyp's make files do not treat linked libraries as prerequisites: relink when the core library is newer.
const lib = join(root, 'native', 'out', 'libdbtcore.a');
const linked = join(root, 'build', 'Release', 'obj.target', 'dbt_native.node');
if (existsSync(linked) && existsSync(lib) && statSync(lib).mtimeMs > statSync(linked).mtimeMs) {
  rmSync(linked);
  rmSync(join(root, 'build', 'Release', 'dbt_native.node'), { force: true });
}
run(gyp[0], [...gyp[1], 'build', '-j', jobs]);
