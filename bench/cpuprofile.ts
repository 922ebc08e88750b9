// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by file, and inclusive time of
// the functions named on the command line, as shares of the busy (non-idle) time.
//   npx tsx bench/cpuprofile.ts <file.cpuprofile> [top N] [function names…]
// $FROM_S: leave out the first seconds (start-up: module loading). Inclusive time of every function
// (a sample counts once per function on its stack) is listed too.
import fs from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
  hitCount?: number;
}

const [file, topArg, ...wanted] = process.argv.slice(2);
const top = Number(topArg ?? 40);
const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
const from = Number(process.env.FROM_S ?? 0) * 1e6;
let clock = 0;
for (let i = 0; i < prof.samples.length; i++) {
  clock += prof.timeDeltas[i] ?? 0;
  if (clock < from) continue;
  self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
}
const short = (u: string) => u.replace(/^.*\/(node_modules|src|bench)\//, '$1/').replace(/^file:\/\//, '');
const label = (n: Node) =>
  `${n.callFrame.functionName || '(anonymous)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
let busy = 0;
const fn = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  if (n.callFrame.functionName === '(idle)') continue;
  busy += us;
  fn.set(label(n), (fn.get(label(n)) ?? 0) + us);
  const f =
    short(n.callFrame.url).replace(/^(node_modules\/(@[^/]+\/)?[^/]+).*$/, '$1') || n.callFrame.functionName;
  files.set(f, (files.get(f) ?? 0) + us);
}
const pct = (us: number) =>
  `${((100 * us) / busy).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms`;
console.log(`busy ${(busy / 1000).toFixed(0)} ms\n\nself time by function:`);
for (const [k, v] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
console.log('\nself time by file / package:');
for (const [k, v] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(v)}  ${k}`);
{
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const l = label(byId.get(x)!);
      if (!seen.has(l)) {
        seen.add(l);
        incl.set(l, (incl.get(l) ?? 0) + us);
      }
    }
  }
  console.log('\ninclusive by function:');
  for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top * 2))
    console.log(`${pct(v)}  ${k}`);
}
if (wanted.length) {
  // Inclusive: a sample counts once for each wanted name on its stack.
  console.log('\ninclusive:');
  const incl = new Map<string, number>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) {
      const name = byId.get(x)!.callFrame.functionName;
      if (wanted.includes(name) && !seen.has(name)) {
        seen.add(name);
        incl.set(name, (incl.get(name) ?? 0) + us);
      }
    }
  }
  for (const w of wanted) console.log(`${pct(incl.get(w) ?? 0)}  ${w}`);
}
