// The tail of a CI log is often all that is kept, so it must say what broke without the whole log.
// Prints, for each vitest JSON report given (the suite, then the full mode), the name of each failed test
// and each file that failed outside a test (a hook, an import), and the run's unhandled errors; then the exit status of each step that
// failed (a step can fail with every test passed: an unhandled error, a worker that died, a missing
// report); and last one plain closing line: "tests: N passed, N failed[, N skipped]" over the suite.
//   node .ci/summary.mjs <suite.json> [<full.json>] [--step name=status ...]
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const reports = args.filter((a) => !a.startsWith('--') && !a.includes('='));
const steps = args.filter((a) => a.includes('=')).map((a) => a.split('='));

function read(file) {
  if (!file || !fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

function failures(r) {
  for (const f of r.testResults ?? []) {
    const name = path.relative(process.cwd(), f.name);
    const failedTests = (f.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failedTests) {
      const first = String(a.failureMessages?.[0] ?? '').split('\n')[0].slice(0, 300);
      console.log(`FAILED ${name} > ${a.fullName}\n  ${first}`);
    }
    if (f.status === 'failed' && failedTests.length === 0) {
      console.log(`FAILED ${name} (outside a test)\n  ${String(f.message ?? '').split('\n')[0].slice(0, 300)}`);
    }
  }
}

const counts = [];
for (const file of reports) {
  const r = read(file);
  if (!r) {
    console.log(`FAILED no readable report at ${file}`);
    counts.push({ passed: 0, failed: 1, skipped: 0 });
    continue;
  }
  failures(r);
  // Written beside the report by test/setup/run-end-reporter.ts: errors no test owns.
  const end = read(file.replace(/\.json$/, '-end.json'));
  for (const e of end?.unhandled ?? []) {
    console.log(`UNHANDLED in ${path.basename(file)}: ${e.name}: ${e.message.split('\n')[0].slice(0, 300)}`);
    console.log(e.stack.split('\n').slice(1, 4).join('\n'));
  }
  if (end && end.reason !== 'passed') console.log(`${path.basename(file)}: run ended ${end.reason}`);
  counts.push({
    passed: r.numPassedTests ?? 0,
    failed: (r.numFailedTests ?? 0) + (r.success === false && !r.numFailedTests ? 1 : 0),
    skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0),
  });
}
for (const [name, status] of steps) {
  if (status !== '0') console.log(`step FAILED: ${name} exited ${status}`);
}
if (counts.length > 1) {
  const full = counts[1];
  console.log(`full mode: ${full.passed} passed, ${full.failed} failed`);
}
const suite = counts[0] ?? { passed: 0, failed: 1, skipped: 0 };
console.log(
  `tests: ${suite.passed} passed, ${suite.failed} failed${suite.skipped ? `, ${suite.skipped} skipped` : ''}`,
);
