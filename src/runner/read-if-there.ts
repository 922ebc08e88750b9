// Reading a file that may not be there: a run-dir record not yet written, /proc/<pid>/stat of a process
// that is gone. Only "not there" reads as null. Any other error (too many open files, EIO, a directory
// where a record should be) is thrown: taken for "no record" or "no such process", it would end a
// live attempt as lost. The watcher logs a thrown step and looks again later.
import { readFileSync } from 'node:fs';

const ABSENT = new Set(['ENOENT', 'ENOTDIR', 'ESRCH']);

export function readIfThere(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (ABSENT.has((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
}
