// The `lifeline` executable (SPEC §7). Each command lives in commands/<name>.ts and is listed, one line
// each, in commands/index.ts; run.ts builds the program and runs it; this file is the process around it.
import { processIo } from './client/action.ts';
import { runCli } from './run.ts';

// A reader that stops early (`lifeline events --follow | head -5`) closes the pipe; the next write fails
// with EPIPE. Stop quietly with 0 then, as Unix tools do, instead of an unhandled 'error' event.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

const code = await runCli(process.argv.slice(2), processIo());
if (code !== null) {
  // Exit once stdout and stderr have flushed: a client command is over, whatever it left open.
  await Promise.all(
    [process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))),
  );
  process.exit(code);
}
