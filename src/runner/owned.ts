// Trust nothing another local user could have made: the data dir, its run dirs and the runner's
// socket must be this process's own. A data dir another user created lets that user read every
// secret written into it, and a socket another user bound would receive launch requests (raw params
// included) and could answer them with forged starts. See docs/security.md, "The runner socket".
import fs from 'node:fs';

/** A path this server will not use because someone else owns it (or could swap it). */
export class UnsafePath extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsafePath';
  }
}

export function myUid(): number {
  return process.getuid?.() ?? -1;
}

/** "uid 65534 (nobody)", from /etc/passwd when it names it. */
export function describeUid(uid: number): string {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && Number(f[2]) === uid && f[2] !== '') return `uid ${uid} (${f[0]})`;
    }
  } catch {
    // no passwd file: the number alone
  }
  return `uid ${uid}`;
}

/** Why `st` is not a directory only we can change, or null when it is. */
function notPrivate(st: fs.Stats, uid: number): string | null {
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== uid) return `is owned by ${describeUid(st.uid)}, not by this server's ${describeUid(uid)}`;
  return null;
}

/**
 * Creates `dir` (0700) if missing, refuses it unless this uid owns it, and tightens it to 0700. Its
 * parent must not let any user swap it: not world writable unless sticky (as /tmp).
 */
export function ensurePrivateDir(dir: string, what: string, uid = myUid()): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  const why = notPrivate(st, uid);
  if (why) throw new UnsafePath(`${what} ${dir} ${why}: refusing to keep secrets or talk to a runner there`);
  const parent = fs.statSync(`${dir}/..`);
  if ((parent.mode & 0o002) !== 0 && (parent.mode & 0o1000) === 0)
    throw new UnsafePath(
      `${what} ${dir} is inside a directory any user may write to (mode ${(parent.mode & 0o7777).toString(8)}, ` +
        `not sticky), so another user could replace it: move it somewhere only its owner can change`,
    );
  if ((st.mode & 0o777) !== 0o700) fs.chmodSync(dir, 0o700);
}

/** Refuses a directory inside the data dir (a run dir) that is not ours or is a symlink. */
export function assertOwnedDir(dir: string, what: string, uid = myUid()): void {
  const st = fs.lstatSync(dir);
  const why = st.isSymbolicLink() ? 'is a symlink' : notPrivate(st, uid);
  if (why) throw new UnsafePath(`${what} ${dir} ${why}`);
}

/**
 * Whether the socket at `sock` may be trusted before connecting: a socket (not a symlink or file)
 * owned by this uid, in a directory (`dirStat`) owned by this uid that no other user may write to.
 * Since only this uid can create or replace entries there, the socket checked is the one connected
 * to, and only a process of this uid (who could read our memory anyway) could have bound it. Returns
 * why not, or null.
 */
export function untrustedSocket(sock: string, dirStat: fs.Stats, uid = myUid()): string | null {
  if (dirStat.uid !== uid) return `its directory is owned by ${describeUid(dirStat.uid)}`;
  if ((dirStat.mode & 0o022) !== 0) return 'its directory is group or world writable';
  let st: fs.Stats;
  try {
    st = fs.lstatSync(sock);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? null : (err as Error).message;
  }
  if (!st.isSocket()) return 'it is not a socket';
  if (st.uid !== uid) return `it is owned by ${describeUid(st.uid)}`;
  return null;
}
