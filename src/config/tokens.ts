// Auth tokens from the file: a `token_env` variable is read at load and kept only as its SHA-256;
// tokens must differ by name (the actor in every event) and by value.
import { createHash } from 'node:crypto';
import type { Seg } from './messages.ts';
import type { TopFile } from './schema.ts';
import type { TokenConfig } from './types.ts';

export function resolveTokens(
  auth: NonNullable<TopFile['auth']>,
  env: NodeJS.ProcessEnv,
  add: (p: readonly Seg[], message: string) => void,
): TokenConfig[] {
  const tokens: TokenConfig[] = [];
  const indexOf: number[] = []; // tokens[n] came from auth.tokens[indexOf[n]]
  auth.tokens.forEach((t, i) => {
    const at = ['auth', 'tokens', i, 'token_env'];
    if (t.token_env === undefined) {
      tokens.push({ name: t.name, role: t.role, sha256: t.token_sha256.toLowerCase() });
      indexOf.push(i);
      return;
    }
    const value = env[t.token_env];
    if (value === undefined) add(at, `token "${t.name}": environment variable ${t.token_env} is not set`);
    else if (value === '') add(at, `token "${t.name}": environment variable ${t.token_env} is empty`);
    else if (value.trim() !== value) {
      // A bearer token with surrounding blanks can never match an Authorization header.
      add(at, `token "${t.name}": environment variable ${t.token_env} has leading or trailing whitespace`);
    } else {
      tokens.push({ name: t.name, role: t.role, sha256: sha256Hex(value) });
      indexOf.push(i);
    }
  });
  tokens.forEach((t, n) => {
    const i = indexOf[n];
    const j = tokens.findIndex((o) => o.name === t.name);
    if (j < n) {
      add(
        ['auth', 'tokens', i, 'name'],
        `duplicate token name "${t.name}" (also auth.tokens[${indexOf[j]}])`,
      );
    }
    const k = tokens.findIndex((o) => o.sha256 === t.sha256);
    if (k < n) {
      add(
        ['auth', 'tokens', i],
        `token "${t.name}" is the same token as auth.tokens[${indexOf[k]}] ("${tokens[k].name}"); every token must differ`,
      );
    }
  });
  return tokens;
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}
