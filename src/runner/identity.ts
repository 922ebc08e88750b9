// Process identity: a pid alone can be reused, so we pair it with its start time (field 22
// of /proc/PID/stat, clock ticks since boot) and the boot id. Linux only.
import { readdirSync, readFileSync } from 'node:fs';
import { readIfThere } from './read-if-there.ts';

export interface ProcessIdentity {
  pid: number;
  start: string;
  boot: string;
}

let cachedBootId: string | undefined;

export function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}

/** Start time and state letter of a pid, or null when it does not exist. */
export function readStat(pid: number): { start: string; state: string } | null {
  const st = readProcStat(pid);
  return st && { start: st.start, state: st.state };
}

/** Same boot, same pid, same start time, and not a zombie (PID 1 in a container may never reap). */
export function isAlive(id: ProcessIdentity): boolean {
  if (id.boot !== bootId()) return false;
  const stat = readStat(id.pid);
  if (!stat || stat.start !== id.start) return false;
  return stat.state !== 'Z' && stat.state !== 'X' && stat.state !== 'x';
}

/** One /proc/<pid>/stat, the fields identity, group membership and parentage need. */
interface ProcStat {
  pid: number;
  ppid: number;
  pgrp: number;
  session: number;
  start: string;
  state: string;
}

/**
 * The one reader of /proc/<pid>/stat: null when the process is gone (or the line unparsable); an error
 * other than its absence is thrown (read-if-there.ts), never taken for a dead process.
 */
function readProcStat(pid: number): ProcStat | null {
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const text = readIfThere(`/proc/${pid}/stat`);
  if (text === null) return null;
  // comm (field 2) may contain spaces and ')', so split only after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const f = text
    .slice(close + 1)
    .trim()
    .split(' ');
  // f[0] is field 3 overall (state), f[19] field 22 (start time in clock ticks since boot).
  if (!f[0] || !f[19] || !/^\d+$/.test(f[19])) return null;
  return { pid, state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), start: f[19] };
}

const dead = (state: string) => state === 'Z' || state === 'X' || state === 'x';

/**
 * The live processes of the group (or session) the plan `id` led, also after the plan itself is gone:
 * every process whose process group or session is id.pid and that started no earlier than the plan,
 * on the same boot. While one of them lives the kernel cannot give id.pid to another process, so the
 * group is still the plan's; a process now holding id.pid with another start time means it is not.
 */
export function groupMembers(id: ProcessIdentity): ProcessIdentity[] {
  if (!Number.isSafeInteger(id.pid) || id.pid <= 1 || id.boot !== bootId()) return [];
  const holder = readProcStat(id.pid);
  if (holder && holder.start !== id.start) return []; // the pid was reused: the plan's group is gone
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const out: ProcessIdentity[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const st = readProcStat(Number(name));
    if (!st || dead(st.state) || (st.pgrp !== id.pid && st.session !== id.pid)) continue;
    if (BigInt(st.start) < BigInt(id.start) || st.pid === process.pid) continue;
    out.push({ pid: st.pid, start: st.start, boot: id.boot });
  }
  return out;
}

/**
 * Signals the process group led by id.pid, only after verifying the identity: the whole group at once
 * while its leader lives, then each member by its own identity (those that left the group but not the
 * session, and all of them once the leader is gone: a child that ignored SIGTERM outlives the plan).
 * Returns whether a signal was sent. (A pid reused between check and kill is the one race left; Node
 * 20 has no pidfd to close it.)
 */
export function signalGroup(id: ProcessIdentity, signal: NodeJS.Signals | number): boolean {
  // kill(-1) would hit every process we may signal, kill(-0) our own group.
  if (!Number.isSafeInteger(id.pid) || id.pid <= 1) return false;
  let sent = false;
  if (isAlive(id)) {
    try {
      process.kill(-id.pid, signal);
      sent = true;
    } catch (err) {
      // ESRCH: gone, or not yet a group leader (between fork and setsid in the supervisor).
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ESRCH' && code !== 'EPERM') throw err;
      return false;
    }
  }
  for (const m of groupMembers(id)) {
    if (sent && processGroupOf(m.pid) === id.pid) continue; // the group's signal reached it
    if (signalProcess(m, signal)) sent = true;
  }
  return sent;
}

/** The process group of a live pid (field 5 of /proc/<pid>/stat), or null when it is gone. */
export function processGroupOf(pid: number): number | null {
  return readProcStat(pid)?.pgrp ?? null;
}

/**
 * The live descendants of a process, found by walking /proc's parent pids (Linux), each with its
 * identity. A plan's grandchild that called setsid has left the plan's process group, so signalling
 * the group misses it; this finds it while it is still below the plan. One that was already
 * reparented away (its parent exited) cannot be found this way.
 */
export function descendants(root: ProcessIdentity): ProcessIdentity[] {
  if (!isAlive(root)) return [];
  const children = new Map<number, number[]>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = readProcStat(Number(name))?.ppid;
    if (ppid === undefined) continue; // gone meanwhile
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: ProcessIdentity[] = [];
  const queue = [root.pid];
  const seen = new Set(queue);
  while (queue.length > 0) {
    for (const pid of children.get(queue.shift()!) ?? []) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      const stat = readStat(pid);
      if (!stat) continue;
      out.push({ pid, start: stat.start, boot: root.boot });
      queue.push(pid);
    }
  }
  return out;
}

/** Signals one process, only after verifying its identity. Returns whether a signal was sent. */
export function signalProcess(id: ProcessIdentity, signal: NodeJS.Signals | number): boolean {
  if (!Number.isSafeInteger(id.pid) || id.pid <= 1 || id.pid === process.pid) return false;
  if (!isAlive(id)) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch {
    return false; // gone, or not ours
  }
}

/** Parses "PID STARTTIME BOOTID" as written by supervisor.sh; null for anything else. */
export function parseIdentityLine(text: string): ProcessIdentity | null {
  const m = /^(\d{1,10}) (\d{1,20}) ([0-9a-fA-F-]{1,64})$/.exec(text.trim());
  if (!m) return null;
  const pid = Number(m[1]);
  if (!Number.isSafeInteger(pid) || pid <= 1) return null;
  return { pid, start: m[2], boot: m[3] };
}
