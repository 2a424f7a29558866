import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';

/**
 * What the bench's data directories sit on, for the report's header: the flat-file
 * rows in particular move with the filesystem (session 10 found ext4 without a
 * journal, mounted with `discard`, making every freed file wait for a discard, and
 * its inode allocator skipping recently freed inodes one by one). Linux only (it
 * reads /proc); elsewhere the header says nothing.
 */
export function describeDataFilesystem(dir: string): string | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const jbd2 = existsSync('/proc/fs/jbd2') ? readdirSync('/proc/fs/jbd2') : [];
    return describeMount(readFileSync('/proc/self/mountinfo', 'utf8'), realpathSync(dir), jbd2);
  } catch {
    return undefined;
  }
}

/** Mount options that change how writes and frees reach the disk. */
const TELLING = [/^discard$/, /^nodiscard$/, /^sync$/, /^dirsync$/, /^nobarrier$/, /^barrier=0$/, /^data=/, /^commit=/];

/**
 * The mount holding `file` (the longest mount point above it) in `mountinfo` format
 * (proc(5)), as "ext4 on /dev/vda at /, no journal, discard". `jbd2` lists
 * /proc/fs/jbd2: an ext3/ext4 device with a journal has an entry `<device>-<n>` there.
 */
export function describeMount(mountinfo: string, file: string, jbd2: string[]): string | undefined {
  let best: { point: string; fstype: string; source: string; options: string[] } | undefined;
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const fields = left.split(' ');
    const point = unescape(fields[4] ?? '');
    const [fstype = '', source = '', superOptions = ''] = right.split(' ');
    const inside = point === '/' || file === point || file.startsWith(point + '/');
    if (!inside || (best && best.point.length >= point.length)) continue;
    best = { point, fstype, source: unescape(source), options: [...(fields[5] ?? '').split(','), ...superOptions.split(',')] };
  }
  if (!best) return undefined;
  const parts = [`${best.fstype} on ${best.source} at ${best.point}`];
  if (best.fstype === 'ext4' || best.fstype === 'ext3') {
    const device = path.basename(best.source);
    parts.push(jbd2.some((e) => e.startsWith(device + '-')) ? 'journal' : 'no journal');
  }
  const telling = [...new Set(best.options.filter((o) => TELLING.some((re) => re.test(o))))];
  parts.push(...telling);
  return parts.join(', ');
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
