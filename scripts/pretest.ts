// npm's `pretest`: what the suite needs from the machine, checked before vitest starts. When something is
// missing and this may install it (root, and apt-get present: a Debian machine or CI), it installs the
// Debian packages non-interactively; otherwise it stops at once with one line naming the exact command.
// The decision is a pure function of the probed machine (decide), so it is unit-tested
// (test/scripts/pretest.test.ts).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresBinDir } from '../test/helpers/pg.ts';

export interface Need {
  /** What the suite needs, as the stop line names it. */
  what: string;
  /** The Debian package that provides it, or '' when no package can (then `fix` says what to do). */
  pkg: string;
  fix?: string;
}

/** What one probe of the machine found. */
export interface Machine {
  /** Needs not met, in the order of NEEDS. */
  missing: Need[];
  uid: number;
  /** apt-get is on the PATH. */
  apt: boolean;
  /** sudo is on the PATH (only used to name the command for a non-root user). */
  sudo: boolean;
}

export type Decision =
  { kind: 'ok' } | { kind: 'install'; packages: string[] } | { kind: 'stop'; line: string };

export const POSTGRES: Need = {
  what: 'PostgreSQL server binaries (initdb, pg_ctl, postgres)',
  pkg: 'postgresql',
};
/**
 * The browser tests' Chromium: Debian's headless shell (package chromium-headless-shell, built from the
 * same source and version as its `chromium`), the build Playwright itself runs headless tests on. The full
 * browser in headless mode paid about twice the CPU for the same pages (docs/reliability.md).
 */
export const DEBIAN_CHROMIUM = '/usr/bin/chromium-headless-shell';
export const CHROMIUM: Need = {
  what: `Chromium's headless shell at ${DEBIAN_CHROMIUM}`,
  pkg: 'chromium-headless-shell',
};
// ansible-core, not ansible: the example uses only ansible.builtin modules, and the full package adds
// hundreds of megabytes of collections.
export const ANSIBLE: Need = { what: 'ansible-playbook', pkg: 'ansible-core' };
/** LIFELINE_CHROMIUM names a browser that is not there: installing Debian's would not help. */
export const customChromium = (file: string): Need => ({
  what: `Chromium at ${file} (LIFELINE_CHROMIUM)`,
  pkg: '',
  fix: `no such program; correct LIFELINE_CHROMIUM, or unset it to use ${DEBIAN_CHROMIUM}`,
});
export const PERL: Need = { what: 'perl', pkg: 'perl' };

export function decide(m: Machine): Decision {
  if (m.missing.length === 0) return { kind: 'ok' };
  const unfixable = m.missing.find((n) => !n.pkg);
  if (unfixable) return { kind: 'stop', line: `npm test needs ${unfixable.what}: ${unfixable.fix}` };
  const packages = [...new Set(m.missing.map((n) => n.pkg))];
  const needs = m.missing.map((n) => n.what).join(', ');
  if (m.apt && m.uid === 0) return { kind: 'install', packages };
  if (m.apt) {
    const cmd = `${m.sudo ? 'sudo ' : ''}apt-get install -y ${packages.join(' ')}`;
    const as = m.sudo ? '' : ' as root';
    return { kind: 'stop', line: `npm test needs ${needs}: run \`${cmd}\`${as}, then npm test again` };
  }
  return {
    kind: 'stop',
    line:
      `npm test needs ${needs} and this machine has no apt-get: install them with its package manager ` +
      `(set LIFELINE_CHROMIUM to a Chromium elsewhere, or LIFELINE_TEST_PG_URL to a server the tests may ` +
      `create databases on), then npm test again`,
  };
}

// ---- probing the real machine ------------------------------------------------------------------

function onPath(cmd: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? '')
    .split(path.delimiter)
    .some((dir) => dir !== '' && isExecutable(path.join(dir, cmd)));
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function hasPostgres(env: NodeJS.ProcessEnv): boolean {
  if (env.LIFELINE_TEST_PG_URL) return true; // the tests use that server instead of starting one
  try {
    const bin = postgresBinDir();
    return ['initdb', 'pg_ctl', 'postgres'].every((t) => isExecutable(path.join(bin, t)));
  } catch {
    return false;
  }
}

export function probe(env: NodeJS.ProcessEnv = process.env): Machine {
  const missing: Need[] = [];
  if (!hasPostgres(env)) missing.push(POSTGRES);
  const chromium = env.LIFELINE_CHROMIUM ?? DEBIAN_CHROMIUM;
  if (!isExecutable(chromium)) missing.push(env.LIFELINE_CHROMIUM ? customChromium(chromium) : CHROMIUM);
  if (!onPath('ansible-playbook', env)) missing.push(ANSIBLE);
  if (!onPath('perl', env)) missing.push(PERL);
  return { missing, uid: process.getuid?.() ?? -1, apt: onPath('apt-get', env), sudo: onPath('sudo', env) };
}

function aptGet(args: string[]): void {
  execFileSync('apt-get', args, {
    stdio: ['ignore', 'ignore', 'inherit'], // dpkg's progress is noise; errors come on stderr
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function main(): number {
  const d = decide(probe());
  if (d.kind === 'ok') return 0;
  if (d.kind === 'stop') {
    process.stderr.write(`${d.line}\n`);
    return 1;
  }
  process.stderr.write(
    `pretest: installing ${d.packages.join(' ')} with apt-get (once; later runs find them)\n`,
  );
  try {
    aptGet(['update', '-qq']);
    aptGet(['install', '-y', '-qq', ...d.packages]);
  } catch (err) {
    process.stderr.write(`pretest: apt-get failed (${(err as Error).message.split('\n')[0]})\n`);
    return 1;
  }
  const after = probe();
  if (after.missing.length > 0) {
    process.stderr.write(
      `pretest: still missing after apt-get install: ${after.missing.map((n) => n.what).join(', ')}\n`,
    );
    return 1;
  }
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main();
}
