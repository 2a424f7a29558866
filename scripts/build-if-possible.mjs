// Runs before `npm start`: rebuilds dist/ from src/ when the TypeScript compiler is
// installed (a development checkout), and otherwise uses the dist/ that `npm install`
// built (hosts that prune dev dependencies after building, e.g. Heroku).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  tsc = undefined;
}
if (tsc) {
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
if (!existsSync('dist/cli/main.js')) {
  console.error('dist/ is missing and TypeScript is not installed: run `npm install` first.');
  process.exit(1);
}
