import type { Command } from 'commander';
import { loadRunSpec, runSpecSchema, toYaml, type SetArg } from '../config/index.js';
import { cudaStatus, planDevice, type CudaStatus, type DevicePlan } from '../core/index.js';
import type { PathIssue } from '../config/validate.js';
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
  /** `--device X`: `--set device=X`, applied after the `--set`s. */
  device?: string;
}

export interface ConfigActions {
  schema(opts: ConfigSchemaOptions): void | Promise<void>;
  show(opts: ConfigShowOptions): void | Promise<void>;
}

/** `dbt config schema`: the JSON Schema of run specs, for editors and other tools. */
export function configSchema(opts: ConfigSchemaOptions): void {
  createOutput(opts.json).data(JSON.stringify(runSpecSchema, null, 2));
}

/** What the resolved spec's device means on this machine: the device `auto`/`cuda:N` picks, or why it cannot. */
export interface DeviceOnMachine {
  requested: string;
  /** "cpu" or "cuda:N"; null when the spec asks for CUDA that this machine cannot give. */
  resolved: string | null;
  description: string | null;
  /** Why the request cannot run here (null when it can). */
  problem: string | null;
}

function machineCudaStatus(): CudaStatus {
  try {
    return cudaStatus();
  } catch (err) {
    // config show works without the native core; report it as the reason CUDA is unavailable.
    const reason = `the native core could not be loaded: ${(err as Error).message}`;
    return { built: false, available: false, reason, archs: '', device: -1, runtimeVersion: 0, driverVersion: 0, devices: [] };
  }
}

function deviceWarning(request: string, plan: DevicePlan): PathIssue[] {
  if (plan.ok) return [];
  if (plan.why === 'no-such-device')
    return [{ path: ['device'], message: `${request} does not exist on this machine; training will refuse it here`, hint: `${plan.reason}; or use device: auto` }];
  return [
    {
      path: ['device'],
      message: `${request} needs CUDA, which is unavailable on this machine: ${plan.reason}; training will refuse it here`,
      hint: 'use device: auto, which picks the CPU here, or device: cpu',
    },
  ];
}

/** `dbt config show`: the fully resolved spec (YAML, or a JSON result with --json). */
export function configShow(opts: ConfigShowOptions): void {
  const out = createOutput(opts.json);
  const sets: (string | SetArg)[] = [...opts.sets];
  if (opts.device !== undefined) sets.push({ arg: `device=${opts.device}`, where: `--device ${opts.device}` });
  let plan: DevicePlan | undefined;
  const loaded = loadRunSpec(opts.file, sets, { machineWarnings: (spec) => deviceWarning(spec.device, (plan = planDevice(spec.device, machineCudaStatus))) });
  plan ??= planDevice(loaded.spec.device, machineCudaStatus);
  const device: DeviceOnMachine = plan.ok
    ? { requested: loaded.spec.device, resolved: plan.name, description: plan.description, problem: null }
    : { requested: loaded.spec.device, resolved: null, description: null, problem: plan.message };
  const warnings = loaded.warnings.map(formatConfigIssue);
  if (opts.json) {
    out.result({ ok: true, command: 'config show', file: loaded.file, preset: loaded.preset, run_dir: loaded.runDir, device, warnings, spec: loaded.spec });
    return;
  }
  for (const w of warnings) out.warn(w);
  const comment = device.resolved === null ? 'unavailable on this machine (see the warning)' : device.requested === 'cpu' ? null : `→ ${device.description} on this machine`;
  out.data(toYaml(loaded.spec, comment ? { device: comment } : {}));
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
    .option('--device <device>', 'shorthand for --set device=<device>: auto, cpu, cuda or cuda:N')
    .action(async (file: string, opts: { set?: string[]; device?: string }, cmd: Command) => {
      await actions.show({ json: globalOptions(cmd).json, file, sets: opts.set ?? [], ...(opts.device !== undefined ? { device: opts.device } : {}) });
    });
}

export const register = (program: Command) => registerConfig(program);
