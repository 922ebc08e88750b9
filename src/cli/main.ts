// The `lifeline` executable (SPEC §7). Each command lives in commands/<name>.ts and is listed, one line
// each, in commands/index.ts; this file only builds the program and runs it.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { DEFAULT_URL } from './client/api.ts';
import { COMMANDS } from './commands/index.ts';

/** What the client commands read from the environment; shown under every command's --help. */
export const ENV_HELP = `
Environment (client commands):
  LIFELINE_URL    the server (default ${DEFAULT_URL})
  LIFELINE_TOKEN  bearer token, sent as Authorization: Bearer … (default: none)
  NO_COLOR        set and not empty: no colours`;

export function buildProgram(): Command {
  const program = new Command('lifeline')
    .description('Lifeline: deployment lifecycle control plane')
    .version(VERSION)
    .addHelpText('after', ENV_HELP)
    .showHelpAfterError(`hint: see lifeline --help`)
    .exitOverride();
  for (const register of COMMANDS) register(program);
  // A usage error prints its one line and where to read more, not the whole help.
  for (const cmd of program.commands) {
    cmd.showHelpAfterError(`hint: see lifeline ${cmd.name()} --help`);
    if (cmd.name() !== 'serve') cmd.addHelpText('after', ENV_HELP);
  }
  return program;
}

// A reader that stops early (`lifeline events --follow | head -5`) closes the pipe; the next write fails
// with EPIPE. Stop quietly with 0 then, as Unix tools do, instead of an unhandled 'error' event.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
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
