import { Command, CommanderError, Option } from 'commander';
import { LOG_LEVELS } from '../log.js';
import { VERSION } from '../version.js';
import { commands } from './commands.js';

export function createProgram(): Command {
  const program = new Command('dbt');
  program
    .description('Headless DreamBooth trainer for Stable Diffusion 1.x')
    .version(VERSION, '-V, --version', 'print the version')
    .addOption(new Option('--json', 'print one machine-readable JSON result on stdout'))
    .addOption(
      new Option('--log-level <level>', 'log level for the run log file').choices([...LOG_LEVELS]).default('info'),
    )
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) });
  for (const register of commands) register(program);
  return program;
}

export { CommanderError };
export { globalOptions, setOption, type GlobalOptions } from './options.js';
