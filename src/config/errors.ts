// The one error type config loading throws. Every line of its message names where the problem is:
// the config file and the field path (`lifeline.yaml: plans.demo.timeout: …`), or the environment
// variable / command-line flag that set the bad value. Messages never quote a value from the
// config (a value may be a token or a database password; SPEC §8.9).

export interface ConfigIssue {
  /** The file label (`lifeline.yaml`), `LIFELINE_PORT (environment)`, or `--port`. */
  source: string;
  /** Dotted field path inside the file (`plans.demo.deploy[0]`); '' for the whole file or an env/flag. */
  path: string;
  message: string;
  /** The path as segments, for finding the line in the file (load.ts adds it to `source`). */
  at?: readonly (string | number)[];
}

export class ConfigError extends Error {
  /** The file label used in messages, or null when the config was built in code without a file. */
  readonly file: string | null;
  readonly issues: ConfigIssue[];
  constructor(file: string | null, issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.file = file;
    this.issues = issues;
  }
}

export function formatIssue(i: ConfigIssue): string {
  return i.path ? `${i.source}: ${i.path}: ${i.message}` : `${i.source}: ${i.message}`;
}
