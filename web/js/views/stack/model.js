// The stack page's rules, pure (no DOM): columns by depth, a unit's label, a run's progress, drift.

/** Units grouped by depth (the API gives each unit's depth and sorts them in dependency order). */
export function unitColumns(units) {
  const cols = [];
  for (const u of units) {
    const d = Number.isInteger(u.depth) && u.depth >= 0 ? u.depth : 0;
    while (cols.length <= d) cols.push([]);
    cols[d].push(u);
  }
  return cols.filter((c) => c.length > 0);
}

/** `net`, or `student-3` for a counted unit. */
export function unitLabel(u) {
  return u.index === null || u.index === undefined ? u.key : `${u.key}-${u.index}`;
}

const SETTLED = new Set(['succeeded', 'failed', 'skipped', 'unknown']);

/** How far a run is: settled targets of all targets (units it does not need are not counted). */
export function runProgress(run) {
  const targets = (run?.steps ?? []).filter((s) => s.step !== 'not_needed');
  return { done: targets.filter((s) => SETTLED.has(s.step)).length, total: targets.length };
}

/** The units a check found drifted (SPEC §14.2), in the API's order. */
export function driftedUnits(units) {
  return units.filter((u) => u.drift);
}
