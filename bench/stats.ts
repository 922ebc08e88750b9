import { section } from './report.ts';

// Small statistics and the table the read benches print: medians over rounds, p50/p99 per round.

export interface Row {
  name: string;
  p50: number;
  p99: number;
  target: string;
  note: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Nearest-rank percentile. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Prints the table and adds it to the report (docs/performance.md). */
export function printTable(title: string, rows: Row[]): void {
  const s = section(title, ['scenario', 'p50 ms', 'p99 ms', 'target', 'note']);
  for (const r of rows) s.rows.push([r.name, r.p50.toFixed(1), r.p99.toFixed(1), r.target, r.note]);
  const w = Math.max(...rows.map((r) => r.name.length), 10);
  console.log(`\n${title}`);
  console.log(`| ${'scenario'.padEnd(w)} | p50 ms | p99 ms | target | note |`);
  console.log(`|${'-'.repeat(w + 2)}|-------:|-------:|--------|------|`);
  for (const r of rows) {
    console.log(
      `| ${r.name.padEnd(w)} | ${r.p50.toFixed(1).padStart(6)} | ${r.p99.toFixed(1).padStart(6)} | ${r.target} | ${r.note} |`,
    );
  }
}
