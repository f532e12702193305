import type { Command } from 'commander';
import { register as registerConfig } from './config.js';
import { register as registerPrep } from './prep.js';

/**
 * Every CLI command module exports a `register(program)` that declares its flags and
 * calls a typed action. A capability that is not built yet is simply not listed here.
 */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [registerPrep, registerConfig];
