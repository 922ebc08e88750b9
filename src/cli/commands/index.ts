// Every `lifeline` command, one registration per line. A command module exports
// `register(program: Command): void` and adds itself with program.command(...).
import type { Command } from 'commander';
import { register as serve } from './serve.ts';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [serve];
