// Reads vitest's JSON report and prints the one line CI reads: "N passed, N failed, N skipped".
// Exits non-zero when anything failed, when a test file failed to load, or when no test ran.
// `--also-failed N` adds N failed checks that are not vitest tests (CI passes 1 when `npm run lint` failed).
import { readFileSync } from 'node:fs';

const file = process.argv[2];
const alsoAt = process.argv.indexOf('--also-failed');
const alsoFailed = alsoAt > 0 ? Number(process.argv[alsoAt + 1]) || 0 : 0;
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (error) {
  console.log(`0 passed, ${1 + alsoFailed} failed`);
  console.error(`vitest JSON report ${file} is missing or unreadable: ${error.message}`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
const failedTests = report.numFailedTests ?? 0;
const failedSuites = (report.testResults ?? []).filter(
  (r) => r.status === 'failed' && (r.assertionResults ?? []).every((a) => a.status !== 'failed'),
).length;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
const failed = failedTests + failedSuites + alsoFailed;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
