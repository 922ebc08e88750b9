// The `ctl` fixture plan waits on a FIFO in its workspace for the exit code to end with.
import fs from 'node:fs';
import path from 'node:path';

/** Tells a `ctl` plan in `dataDir` to exit with rc, once it has made its FIFO and opened it. */
export async function tellCtl(dataDir: string, depId: string, rc: number, timeoutMs = 15_000): Promise<void> {
  const fifo = path.join(dataDir, 'workspaces', depId, 'ctl');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.writeSync(fd, `${rc}\n`);
      fs.closeSync(fd);
      return;
    } catch (err) {
      // no FIFO yet (ENOENT), or no reader yet (ENXIO): anything else is a failure
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENXIO' && code !== 'ENOENT') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
