// A vitest reporter for CI: writes why the run ended and its unhandled errors to a JSON file. vitest's
// JSON report counts tests only, so a run whose tests all passed but which failed on an error outside
// them (a rejection after a test, a worker that died) would otherwise leave the log's tail saying nothing.
import fs from 'node:fs';
import path from 'node:path';
import type { Reporter, SerializedError, TestModule } from 'vitest/node';

export default class RunEndReporter implements Reporter {
  constructor(private readonly options: { outputFile: string }) {}

  onTestRunEnd(
    _modules: ReadonlyArray<TestModule>,
    errors: ReadonlyArray<SerializedError>,
    reason: 'passed' | 'interrupted' | 'failed',
  ): void {
    const unhandled = errors.map((e) => ({
      name: String(e.name ?? 'Error'),
      message: String(e.message ?? '').slice(0, 500),
      stack: String(e.stack ?? '')
        .split('\n')
        .slice(0, 6)
        .join('\n'),
    }));
    fs.mkdirSync(path.dirname(this.options.outputFile), { recursive: true });
    fs.writeFileSync(this.options.outputFile, JSON.stringify({ reason, unhandled }, null, 2));
  }
}
