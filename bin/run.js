#!/usr/bin/env node
// ctx entry point. With no command (`ctx`, or `ctx --snapshot FILE`), it opens the interactive TUI.
import { execute } from '@oclif/core';

const args = process.argv.slice(2);
const opensTui = args.length === 0 || (args[0].startsWith('-') && !['--help', '-h', '--version', '-v'].includes(args[0]));
await execute({ dir: import.meta.url, args: opensTui ? ['tui', ...args] : args });
