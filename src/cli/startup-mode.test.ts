import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { beginStartup, endStartup, endStartupServing, flagsToHold, heldFlags } from './startup-mode.js';

const names = (execArgv: string[], nodeOptions = '') => flagsToHold(execArgv, nodeOptions).map((f) => f.name);

test('both flags are held when the operator set neither', () => {
  assert.deepEqual(names([], ''), ['semi-space-growth-factor', 'turbofan']);
  assert.deepEqual(names(['--enable-source-maps'], '--max-old-space-size=200 --max-semi-space-size=8'), ['semi-space-growth-factor', 'turbofan']);
});

test("a flag the operator gave is left alone, however it is spelled", () => {
  assert.deepEqual(names(['--semi_space_growth_factor=4']), ['turbofan']);
  assert.deepEqual(names(['--semi-space-growth-factor', '3']), ['turbofan']);
  for (const f of ['--no-turbofan', '--turbofan', '--no-opt', '--noopt', '--opt', '--jitless']) {
    assert.deepEqual(names([f]), ['semi-space-growth-factor'], f);
  }
  assert.deepEqual(names([], '--jitless'), ['semi-space-growth-factor']);
});

test('this node knows every flag held and released (V8 prints "unrecognized flag" for an unknown one)', () => {
  const flags = flagsToHold([], '').flatMap((f) => [f.hold, f.release]);
  const r = spawnSync(process.execPath, ['-e', `const v8 = require('node:v8'); for (const f of ${JSON.stringify(flags)}) v8.setFlagsFromString(f);`], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.equal(r.stdout + r.stderr, '');
});

test('a server lets the young generation grow once it listens, and TurboFan back after its first requests', async () => {
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  try {
    beginStartup();
    assert.deepEqual(heldFlags(), ['semi-space-growth-factor', 'turbofan']);
    endStartupServing(server, 3);
    assert.deepEqual(heldFlags(), ['turbofan'], 'idle: the optimiser stays off');
    for (let i = 0; i < 2; i++) await (await fetch(url)).text();
    assert.deepEqual(heldFlags(), ['turbofan'], 'two requests of three');
    await (await fetch(url)).text();
    assert.deepEqual(heldFlags(), [], 'the third brings it back');
    assert.equal(server.listenerCount('request'), 1, 'and stops counting');
  } finally {
    endStartup();
    server.close();
  }
});
