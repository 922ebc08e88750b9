// The stack as the API serves it (SPEC §12.5).
import type { OnFailure, UnitSpec } from './stack-spec.ts';
import type { StackState } from './stack-state.ts';
import type { AttemptSummary, Deployment, DeploymentState } from './types.ts';

export interface StackUnit {
  key: string;
  /** 1…count for a unit with count > 1; null for a single unit. */
  index: number | null;
  /** The unit deployment's name and id. */
  deployment: string;
  deployment_id: string;
  state: DeploymentState;
  current_attempt: AttemptSummary | null;
  /** The deployment's outputs (SPEC §12.1), `{}` until a deploy published some. */
  outputs: Record<string, unknown>;
  /** The unit deployment's drift (SPEC §14.2), as on the deployment; null when not drifted. */
  drift: Deployment['drift'];
  /** Depth in the dependency graph: 0 for a unit with no `after` (the dashboard's column). */
  depth: number;
  /** The keys it comes after. */
  after: string[];
}

export interface RunSummary {
  id: string;
  kind: string;
  state: string;
}

export interface Stack {
  id: string;
  name: string;
  /** The spec as stored, secret params masked. */
  spec: { name: string; on_failure: OnFailure; labels: Record<string, string>; units: UnitSpec[] };
  labels: Record<string, string>;
  state: StackState;
  version: number;
  /** In dependency order: by depth, then spec order, then index. */
  units: StackUnit[];
  active_run: RunSummary | null;
  created_at: string;
  updated_at: string;
}
