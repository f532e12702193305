import type { Command } from 'commander';
import { register as registerConfig } from './config.js';
import { register as registerPrep } from './prep.js';
import { register as registerCreate } from './create.js';
import { register as registerExport } from './export.js';
import { register as registerInspect } from './inspect.js';
import { register as registerDevices } from './devices.js';

/**
 * Every CLI command module exports a `register(program)` that declares its flags and
 * calls a typed action. A capability that is not built yet is simply not listed here.
 */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [registerPrep, registerCreate, registerConfig, registerInspect, registerExport, registerDevices];
