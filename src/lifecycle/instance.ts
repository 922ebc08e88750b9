// An instance's identity lives in its data_dir, so a restarted server is the same instance.
import fs from 'node:fs';
import path from 'node:path';
import { newInstanceId } from './ids.ts';

/** instance.json cannot be read as an identity. Named StartupError so `serve` prints it plainly. */
export class InstanceFileError extends Error {
  constructor(file: string, why: string) {
    super(
      `${file} is not a valid instance file (${why}). It holds this server's identity, {"id": "ins_…"}: ` +
        `restore it from a backup, or delete it to start as a new instance (attempts the old instance ` +
        `ran are then recovered as another instance's)`,
    );
    this.name = 'StartupError';
  }
}

export function loadInstanceId(dataDir: string): string {
  const file = path.join(dataDir, 'instance.json');
  let text: string | null = null;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (text !== null) {
    let id: unknown;
    try {
      id = (JSON.parse(text) as { id?: unknown } | null)?.id;
    } catch (err) {
      throw new InstanceFileError(file, (err as Error).message);
    }
    if (typeof id === 'string' && id.startsWith('ins_')) return id;
    throw new InstanceFileError(file, 'no "id" starting with ins_');
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const id = newInstanceId();
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ id }) + '\n', { mode: 0o600 });
  fs.chmodSync(tmp, 0o600); // whatever the umask
  fs.renameSync(tmp, file);
  return id;
}
