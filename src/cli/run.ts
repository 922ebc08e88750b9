// The `lifeline` program, run in-process: runCli(argv, io) parses the arguments, runs the command with
// io's environment and streams, and returns its exit code (SPEC §7) without exiting. main.ts is the
// process around it; tests run client commands through it without starting a process each.
import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { bindRun, type CliIo } from './client/action.ts';
import { DEFAULT_URL } from './client/api.ts';
import { colorEnabled } from './client/format.ts';
import { COMMANDS } from './commands/index.ts';

/** What the client commands read from the environment; shown under every command's --help. */
export const ENV_HELP = `
Environment (client commands):
  LIFELINE_URL    the server (default ${DEFAULT_URL})
  LIFELINE_TOKEN  bearer token, sent as Authorization: Bearer … (default: none)
  NO_COLOR        set and not empty: no colours`;

export function buildProgram(io: CliIo): Command {
  const program = new Command('lifeline')
    .description('Lifeline: deployment lifecycle control plane')
    // Before any command is added: subcommands copy the output settings when they are created.
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      // commander's own default: the terminal's width, else 80
      getOutHelpWidth: () => (io.stdout.isTTY ? io.stdout.columns : undefined) ?? 80,
      getErrHelpWidth: () => (io.stderr.isTTY ? io.stderr.columns : undefined) ?? 80,
      getOutHasColors: () => colorEnabled(io.stdout, io.env),
      getErrHasColors: () => colorEnabled(io.stderr, io.env),
    })
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

/**
 * Runs `lifeline <argv…>` (argv without node and the script) and returns its exit code; null when the
 * command goes on running after this returns (`serve`: the process stays up for the server).
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number | null> {
  const program = buildProgram(io);
  const run = bindRun(program, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    // --help and --version end here with code 0; usage errors (already printed) exit 2.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    io.stderr.write(`lifeline: ${(err as Error).message}\n`);
    return 1;
  }
  return run.code;
}
