#!/usr/bin/env node
// Launcher for `npx lifeline` / an installed `lifeline`: registers tsx's ESM loader in this process, then
// runs the TypeScript entry point, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
