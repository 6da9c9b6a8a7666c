#!/usr/bin/env node
// ctx entry point. With no arguments, `ctx` opens the interactive TUI.
import { execute } from '@oclif/core';

const args = process.argv.slice(2);
await execute({ dir: import.meta.url, args: args.length === 0 ? ['tui'] : args });
