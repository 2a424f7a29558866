import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeMount } from '../../bench/filesystem.js';

const MOUNTINFO = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534',
  '50 27 8:17 / /srv/my\\040data rw,noatime - ext4 /dev/sdb1 rw,data=ordered,commit=30',
  '51 27 0:40 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw,size=1024k',
].join('\n');

test('the data directory\'s filesystem: the longest mount above it, its journal, and the options that change how writes reach the disk', () => {
  assert.equal(describeMount(MOUNTINFO, '/work/freehold/bench', []), 'ext4 on /dev/vda at /, no journal, discard');
  assert.equal(describeMount(MOUNTINFO, '/srv/my data/records', ['sdb1-8']), 'ext4 on /dev/sdb1 at /srv/my data, journal, data=ordered, commit=30');
  assert.equal(describeMount(MOUNTINFO, '/tmp/freehold-bench-flatfile-x', ['sdb1-8']), 'tmpfs on tmpfs at /tmp');
  assert.equal(describeMount(MOUNTINFO, '/tmpfoo', []), 'ext4 on /dev/vda at /, no journal, discard', 'a mount point is matched as a whole path segment');
  assert.equal(describeMount('', '/x', []), undefined);
});
