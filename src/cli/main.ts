import { CommanderError } from 'commander';
import { EXIT_OK, EXIT_USAGE } from '../errors.js';
import { createProgram } from './program.js';
import { reportError } from './output.js';

/**
 * What a commander usage error says, as one JSON document for `--json` (commander itself printed the human
 * message on stderr already).
 */
export function usageErrorJson(err: CommanderError): string {
  const message = err.code === 'commander.help' ? 'a subcommand is needed (its list is on stderr)' : err.message.replace(/^error: /, '');
  return `${JSON.stringify({ ok: false, error: 'UsageError', message, details: [] })}\n`;
}

/** Runs the CLI and resolves to the process exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message; help and version exit 0, usage mistakes exit 2.
      if (err.exitCode === 0) return EXIT_OK;
      if (json) process.stdout.write(usageErrorJson(err));
      return EXIT_USAGE;
    }
    return reportError(err, undefined, json);
  }
}
