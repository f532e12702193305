#!/usr/bin/env node
// Prints the include flags the N-API addon compiles with (node-addon-api, the running Node's headers), for
// cuemu.mk's emulated addon (out/emu/dbt_native.node). Headers are found as native/build.mjs finds them for
// node-gyp, without a download: npm's nodedir setting, Node's install prefix, or node-gyp's cache.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const napi = dirname(require.resolve('node-addon-api/package.json'));
const version = process.versions.node;
const roots = [
  process.env.npm_config_nodedir,
  process.config.variables.node_prefix,
  join(dirname(process.execPath), '..'),
  join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'node-gyp', version),
  join(homedir(), '.node-gyp', version),
].filter(Boolean);
const root = roots.find((r) => existsSync(join(r, 'include', 'node', 'node_api.h')));
if (!root) {
  process.stderr.write(`cuemu/addon-flags.mjs: no Node ${version} headers (include/node/node_api.h) under ${roots.join(', ')}; ` +
    `install them (e.g. the nodejs dev package) or set npm_config_nodedir\n`);
  process.exit(1);
}
process.stdout.write(`-I${napi} -I${join(root, 'include', 'node')}\n`);
