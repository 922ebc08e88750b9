// The `lifeline` executable (SPEC §7). Each command lives in commands/<name>.ts and is listed, one line
// each, in commands/index.ts; this file only builds the program and runs it.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { COMMANDS } from './commands/index.ts';

export function buildProgram(): Command {
  const program = new Command('lifeline')
    .description('Lifeline: deployment lifecycle control plane')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end here with code 0; usage errors (already printed) exit 2.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  process.stderr.write(`lifeline: ${(err as Error).message}\n`);
  process.exit(1);
}
