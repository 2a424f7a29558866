#!/usr/bin/env node
// The `freehold` command. Runs the compiled CLI (built by `npm install`'s prepare step).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const compiled = path.join(root, 'dist', 'cli', 'main.js');
if (!existsSync(compiled)) {
  console.error('freehold is not built yet: run `npm install` (or `npm run build`) in ' + root);
  process.exit(1);
}
await import(pathToFileURL(compiled).href);
