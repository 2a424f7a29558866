import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpuMsByPid, cpuMsOf, cpuMsSince, startCpu } from '../../bench/cpu.js';

/**
 * A child that, once told (a line on stdin), spends `ms` of CPU by its own count
 * (user + system, whatever else the machine does), says so, and waits.
 */
async function busyChild(ms: number) {
  const child = spawn(process.execPath, ['-e', `
    process.stdin.on('data', () => {
      const from = process.cpuUsage();
      for (;;) { const u = process.cpuUsage(from); if ((u.user + u.system) / 1000 >= ${ms}) break; }
      process.stdout.write('spent\\n');
    });
    process.stdout.write('ready\\n');
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return {
    pid: child.pid,
    spend: async () => {
      child.stdin!.write('go\n');
      await once(child.stdout!, 'data');
    },
    kill: () => child.kill('SIGKILL'),
  };
}

test('bench CPU: a process\'s CPU is read from /proc, and per request over a row', { skip: process.platform !== 'linux' && 'reads /proc' }, async () => {
  const busy = await busyChild(300);
  try {
    const idle = startCpu({ server: busy.pid });
    assert.ok(cpuMsOf(busy.pid)! >= 0);
    const row = startCpu({ server: busy.pid });
    await busy.spend();
    const used = row.perRequest(1000).server!;
    // 300 ms of CPU over 1000 requests is 300 µs each; /proc counts in 10 ms ticks, and reading stdin costs a little.
    assert.ok(used >= 280 && used <= 380, `${used} µs per request`);
    assert.ok(idle.perRequest(1000).server! >= used, 'a reading taken earlier counts at least as much');
    const nodes = cpuMsByPid('node');
    assert.equal(nodes.get(busy.pid!), cpuMsOf(busy.pid), 'the child is among the processes named node');
    const db = startCpu({ database: 'node' });
    await busy.spend();
    assert.ok(db.perRequest(1000).database! >= 280, 'processes counted by name include the child');
  } finally {
    busy.kill();
  }
  assert.equal(cpuMsOf(2 ** 22 + 12345), undefined, 'no such process');
  assert.equal(cpuMsByPid('no-such-command-here').size, 0);
  assert.deepEqual(startCpu({ database: 'no-such-command-here' }).perRequest(10), {}, 'no such processes, no figure');
  // A process that ended took its time with it; one that started counts whole; none goes below zero.
  assert.equal(cpuMsSince(new Map([[1, 500], [2, 100]]), new Map([[2, 130], [3, 40]])), 70);
  assert.equal(cpuMsSince(new Map([[2, 100]]), new Map([[2, 90]])), 0);
  assert.deepEqual(startCpu({}).perRequest(10), {}, 'nothing asked, nothing said');
});
