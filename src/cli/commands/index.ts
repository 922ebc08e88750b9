// Every `lifeline` command, one registration per line. A command module exports
// `register(program: Command): void` and adds itself with program.command(...).
import type { Command } from 'commander';
import { register as serve } from './serve.ts';
import { register as create } from './create.ts';
import { register as deploy } from './deploy.ts';
import { register as rollback } from './rollback.ts';
import { register as teardown } from './teardown.ts';
import { register as cancel } from './cancel.ts';
import { register as resolve } from './resolve.ts';
import { register as check } from './check.ts';
import { register as ls } from './ls.ts';
import { register as show } from './show.ts';
import { register as logs } from './logs.ts';
import { register as events } from './events.ts';
import { register as del } from './delete.ts';
import { register as approve } from './approve.ts';
import { register as freeze } from './freeze.ts';
import { register as stack } from './stack.ts';
import { register as apply } from './apply.ts';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  serve,
  create,
  deploy,
  rollback,
  teardown,
  cancel,
  resolve,
  check,
  ls,
  show,
  logs,
  events,
  del,
  approve,
  freeze,
  stack,
  apply,
];
