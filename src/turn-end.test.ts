import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { atTurnEnd } from './turn-end.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

test('turn end: work runs once the turn is over, in the order asked; work asked for meanwhile waits a turn', async () => {
  const ran: string[] = [];
  atTurnEnd(() => ran.push('a'));
  atTurnEnd(() => {
    ran.push('b');
    atTurnEnd(() => ran.push('later'));
  });
  atTurnEnd(() => ran.push('c'));
  assert.deepEqual(ran, [], 'nothing runs within the turn');
  await nextTurn();
  assert.deepEqual(ran, ['a', 'b', 'c']);
  await nextTurn();
  assert.deepEqual(ran, ['a', 'b', 'c', 'later']);
});

test('turn end: a callback that throws does not keep the others from running, and the error is uncaught', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', `
    import { atTurnEnd } from ${JSON.stringify(new URL('./turn-end.ts', import.meta.url).href)};
    process.on('uncaughtException', (e) => { console.log('uncaught ' + e.message); });
    atTurnEnd(() => { throw new Error('boom'); });
    atTurnEnd(() => console.log('second ran'));
  `], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n').sort(), ['second ran', 'uncaught boom']);
});
