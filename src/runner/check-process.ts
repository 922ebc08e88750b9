// A check spawned by the server itself (no runner: supervisor `sh`, no perl, or the runner could not be
// started): in its own process group, led by a small perl guard that carries the deadline and dies
// with the server. runner.pl does the same without forking the server (runner-client.ts).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import {
  CHECK_OUTPUT_BYTES,
  CHECK_OUTPUT_LINES,
  type CheckRequest,
  type RunningCheck,
} from './launcher-api.ts';
import { findPerl } from './runner-client.ts';

/** coreutils `timeout`, where it is (Linux: always; elsewhere the in-memory timer alone). */
const TIMEOUT_BIN = ['/usr/bin/timeout', '/bin/timeout'].find((f) => fs.existsSync(f));
/** util-linux `setpriv` (Essential on Debian) sets the parent-death signal that perl cannot. */
const SETPRIV_BIN = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f));
const PERL_BIN = findPerl();

/**
 * Leads the check's process group and dies with the engine: the parent-death signal (TERM, set by
 * setpriv before this exec) or a parent already gone kills the whole group, so a check orphaned by a
 * SIGKILLed engine does not run on beside the re-check the next engine starts. Its deadline (whole
 * seconds, rounded up) kills the group too. Otherwise it waits for the check and ends as the check
 * did (its exit code, or the same signal).
 */
const GUARD = `
use POSIX qw(_exit);
my ($owner, $secs) = splice(@ARGV, 0, 2);
my $kill = sub { $SIG{TERM} = 'IGNORE'; kill 'KILL', -$$; _exit(137) };
$SIG{TERM} = $kill;
$SIG{ALRM} = $kill;
$kill->() if getppid() != $owner;
alarm($secs);
my $pid = fork() // _exit(125);
if ($pid == 0) { $SIG{TERM} = 'DEFAULT'; exec { $ARGV[0] } @ARGV; _exit(127) }
while (waitpid($pid, 0) == -1) { $kill->() unless $!{EINTR} }
my $st = $?;
if ($st & 127) { $SIG{TERM} = 'DEFAULT'; kill $st & 127, $$; }
_exit($st >> 8);
`;

/**
 * The check's argv with its deadline inside its own process tree, so a check the engine lost still
 * ends (SPEC §4: every operation has a deadline): the guard above (at once when the engine dies), or
 * where setpriv or perl is missing, `timeout`, which leads the group and SIGKILLs it at the deadline.
 */
export function withDeadline(argv: string[], timeoutMs: number): string[] {
  if (SETPRIV_BIN && PERL_BIN) {
    const secs = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
    return [
      SETPRIV_BIN,
      '--pdeathsig',
      'TERM',
      '--',
      PERL_BIN,
      '-e',
      GUARD,
      String(process.pid),
      secs,
      ...argv,
    ];
  }
  if (!TIMEOUT_BIN) return argv;
  return [TIMEOUT_BIN, '-s', 'KILL', `${Math.max(1, timeoutMs) / 1000}s`, ...argv];
}

/** Spawns a check from this process (a fork of the server: the costly way, used where no runner is). */
export function spawnCheck(req: CheckRequest): RunningCheck {
  const [cmd, ...args] = withDeadline(req.argv, req.timeoutMs);
  let child: ReturnType<typeof spawn> | null = null;
  const kill = () => {
    try {
      if (child?.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  const done = new Promise<number | null>((resolve) => {
    const out = req.output === undefined ? null : new OutputCap();
    child = spawn(cmd, args, {
      env: req.env,
      cwd: req.cwd,
      stdio: out ? ['ignore', 'pipe', 'pipe'] : 'ignore',
      detached: true,
    });
    child.stdout?.on('data', (c: Buffer) => out!.feed(c));
    child.stderr?.on('data', (c: Buffer) => out!.feed(c));
    const timer = setTimeout(kill, req.timeoutMs);
    let ended = false;
    const end = (code: number | null) => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      child = null; // its group is gone: kill() must never signal a reused id
      if (out) out.write(req.output!);
      resolve(code);
    };
    child.on('error', () => end(null));
    // With output kept, its pipes must be drained first ('close'); without, the exit is the end.
    child.on(out ? 'close' : 'exit', (code: number | null) => end(code));
  });
  return { done, kill };
}

/** The first CHECK_OUTPUT_LINES lines of a check's output, at most CHECK_OUTPUT_BYTES (as runner.pl keeps). */
class OutputCap {
  private chunks: Buffer[] = [];
  private lines = 0;
  private bytes = 0;

  feed(buf: Buffer): void {
    if (this.lines >= CHECK_OUTPUT_LINES || this.bytes >= CHECK_OUTPUT_BYTES) return;
    let keep = buf.length;
    for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) {
      if (++this.lines === CHECK_OUTPUT_LINES) {
        keep = i + 1;
        break;
      }
    }
    keep = Math.min(keep, CHECK_OUTPUT_BYTES - this.bytes);
    this.bytes += keep;
    this.chunks.push(buf.subarray(0, keep));
  }

  write(file: string): void {
    try {
      const fd = fs.openSync(
        file,
        fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW,
        0o600,
      );
      try {
        fs.writeSync(fd, Buffer.concat(this.chunks));
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      // no file: the check's result is then recorded without its lines
    }
  }
}
