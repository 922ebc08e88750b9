// The dashboard's state vocabulary (web/js/states.js) is a copy of the domain's, because the browser loads
// plain files and cannot import src/. This holds the copy to the original so that the two cannot drift.
import { describe, expect, it } from 'vitest';
import { importWeb } from './web-module.ts';
import { ATTEMPT_STATES, DEPLOYMENT_STATES } from '../../src/domain/types.ts';
import { isBusy } from '../../src/domain/transitions.ts';

interface States {
  DEPLOYMENT_STATES: string[];
  ACTIVE_STATES: Set<string>;
  stateLabel(state: string): string;
}

const web = await importWeb<States>('states.js');

describe('web state vocabulary', () => {
  it('lists the domain’s deployment states, in the domain’s order', () => {
    expect(web.DEPLOYMENT_STATES).toEqual([...DEPLOYMENT_STATES]);
  });

  it('counts as active exactly the states the domain calls busy', () => {
    expect([...web.ACTIVE_STATES].sort()).toEqual(DEPLOYMENT_STATES.filter((s) => isBusy(s)).sort());
  });

  it('names every deployment and attempt state as people read it', () => {
    for (const s of [...DEPLOYMENT_STATES, ...ATTEMPT_STATES]) {
      expect(web.stateLabel(s)).toBe(s.replaceAll('_', ' '));
    }
  });
});
