// Prints vitest's JSON report as one plain closing line: "tests: N passed, N failed[, N skipped]".
// Above it, the name of each failed test and each file that failed outside a test (a hook, an import),
// so the tail of a CI log says what broke without the whole log.
import fs from 'node:fs';
import path from 'node:path';

const file = process.argv[2];
if (!fs.existsSync(file)) {
  console.log('tests: 0 passed, 1 failed');
  process.exit(0);
}
const r = JSON.parse(fs.readFileSync(file, 'utf8'));
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
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
const failed = (r.numFailedTests ?? 0) + (r.success === false && r.numFailedTests === 0 ? 1 : 0);
console.log(`tests: ${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
