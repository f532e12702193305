import type { Command } from 'commander';
import { loadRunSpec, runSpecSchema, toYaml } from '../config/index.js';
import { formatConfigIssue } from '../errors.js';
import { createOutput } from './output.js';
import { globalOptions, setOption } from './options.js';

export interface ConfigSchemaOptions {
  json: boolean;
}

export interface ConfigShowOptions {
  json: boolean;
  /** The run spec file. */
  file: string;
  /** `--set key=value` arguments, in order. */
  sets: string[];
}

export interface ConfigActions {
  schema(opts: ConfigSchemaOptions): void | Promise<void>;
  show(opts: ConfigShowOptions): void | Promise<void>;
}

/** `dbt config schema`: the JSON Schema of run specs, for editors and other tools. */
export function configSchema(opts: ConfigSchemaOptions): void {
  createOutput(opts.json).data(JSON.stringify(runSpecSchema, null, 2));
}

/** `dbt config show`: the fully resolved spec (YAML, or a JSON result with --json). */
export function configShow(opts: ConfigShowOptions): void {
  const out = createOutput(opts.json);
  const loaded = loadRunSpec(opts.file, opts.sets);
  const warnings = loaded.warnings.map(formatConfigIssue);
  if (opts.json) {
    out.result({ ok: true, command: 'config show', file: loaded.file, preset: loaded.preset, run_dir: loaded.runDir, warnings, spec: loaded.spec });
    return;
  }
  for (const w of warnings) out.warn(w);
  out.data(toYaml(loaded.spec));
}

export const configActions: ConfigActions = { schema: configSchema, show: configShow };

export function registerConfig(program: Command, actions: ConfigActions = configActions): void {
  const config = program.command('config').description('look at run specs: the schema, a resolved spec');
  config
    .command('schema')
    .description('print the JSON Schema of run specs (for editors with the YAML language server)')
    .action(async (_opts: object, cmd: Command) => {
      await actions.schema({ json: globalOptions(cmd).json });
    });
  config
    .command('show')
    .description('print a run spec fully resolved: defaults < preset < file < --set')
    .argument('<spec>', 'run spec YAML file')
    .addOption(setOption())
    .action(async (file: string, opts: { set?: string[] }, cmd: Command) => {
      await actions.show({ json: globalOptions(cmd).json, file, sets: opts.set ?? [] });
    });
}

export const register = (program: Command) => registerConfig(program);
