// An instance's identity lives in its data_dir, so a restarted server is the same instance.
import fs from 'node:fs';
import path from 'node:path';
import { newInstanceId } from './ids.ts';

export function loadInstanceId(dataDir: string): string {
  const file = path.join(dataDir, 'instance.json');
  try {
    const id = (JSON.parse(fs.readFileSync(file, 'utf8')) as { id?: unknown }).id;
    if (typeof id === 'string' && id.startsWith('ins_')) return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const id = newInstanceId();
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ id }) + '\n');
  fs.renameSync(tmp, file);
  return id;
}
