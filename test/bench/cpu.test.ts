import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpuMsOf, cpuMsOfCommand, startCpu } from '../../bench/cpu.js';

/**
 * A child that, once told (a line on stdin), spends `ms` of CPU by its own count
 * (user + system, whatever else the machine does), says so, and waits.
 */
async function busyChild(ms: number) {
  const child = spawn(process.execPath, ['-e', `
    process.stdin.once('data', () => {
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
    assert.ok(cpuMsOfCommand('node')! >= cpuMsOf(busy.pid)!, "every process named node together spent at least the child's");
  } finally {
    busy.kill();
  }
  assert.equal(cpuMsOf(2 ** 22 + 12345), undefined, 'no such process');
  assert.equal(cpuMsOfCommand('no-such-command-here'), undefined);
  assert.deepEqual(startCpu({}).perRequest(10), {}, 'nothing asked, nothing said');
});
