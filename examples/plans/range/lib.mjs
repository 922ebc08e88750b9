// Shared by the range example's plans: what the runner tells a plan (SPEC §4, §12.2) and the two ways
// a plan talks back: lines on stdout (its log) and JSON lines in LIFELINE_EVENTS_FILE (runner events;
// `{"output": {...}}` publishes outputs for the units that come after it).
import fs from 'node:fs';
import path from 'node:path';

export const kind = process.env.LIFELINE_KIND; // deploy | teardown | check
export const name = process.env.LIFELINE_DEPLOYMENT_NAME;
export const index = Number(process.env.LIFELINE_UNIT_INDEX ?? '1');
export const params = JSON.parse(process.env.LIFELINE_PARAMS || '{}');
const marker = path.join(process.env.LIFELINE_WORKSPACE, 'up');

export function event(obj) {
  fs.appendFileSync(process.env.LIFELINE_EVENTS_FILE, `${JSON.stringify(obj)}\n`);
}

/** `{"<key>": {"<deployment name>": {outputs}}}` of every unit this one comes after. */
export function inputs() {
  const file = process.env.LIFELINE_INPUTS;
  return file ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Prints `steps` lines a few hundred ms apart, so that the dashboard has something to show. */
export async function work(steps) {
  for (const [i, what] of steps.entries()) {
    console.log(`${name}: ${what}`);
    if (i < steps.length - 1) await sleep(300);
  }
}

/** deploy: run `up`, mark the workspace; teardown: run `down`, unmark; check: up (0) or absent (3). */
export async function main({ up, down }) {
  if (kind === 'check') {
    const there = fs.existsSync(marker);
    console.log(there ? 'up' : 'absent');
    process.exit(there ? 0 : 3);
  }
  if (kind === 'teardown') {
    await down();
    fs.rmSync(marker, { force: true });
    return;
  }
  await up();
  fs.writeFileSync(marker, new Date().toISOString());
}
