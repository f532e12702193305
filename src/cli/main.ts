import { CommanderError } from 'commander';
import { EXIT_OK, EXIT_USAGE } from '../errors.js';
import { createProgram } from './program.js';
import { reportError } from './output.js';

/** Runs the CLI and resolves to the process exit code; never throws. */
export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message; help and version exit 0, usage mistakes exit 2.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    return reportError(err, undefined, argv.includes('--json'));
  }
}
