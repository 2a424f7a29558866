/**
 * The in-memory plan of one unit of writes (several callers' writes grouped into one
 * journalled commit). Each write is decided against the plan's view: what earlier
 * writes in the unit left, else what is on disk. Deciding everything before touching
 * a file is what lets a unit be journalled up front and rolled back as a whole, and
 * lets a failing write (a create conflict) be refused without affecting the others.
 *
 * Record contents are carried as their serialised text, the exact bytes that will be
 * written: no re-serialising, and later mutation of a caller's object cannot leak in.
 */

export interface PlannedChange {
  table: string;
  id: string;
  op: 'put' | 'delete';
}

export interface PlannedWrite {
  table: string;
  id: string;
  /** Final text of the record file, or null to delete it. */
  text: string | null;
  /** The file's text before the unit, or null if it did not exist. */
  before: string | null;
}

/** What holds a record's file name on disk that is not a record file (a folder, a symlink, a named pipe, a socket). */
export const OCCUPIED = Symbol('occupied');

/** Reads the current file text of a record (null if absent, OCCUPIED if something else holds its name). */
export type DiskReader = (table: string, id: string) => string | null | typeof OCCUPIED;

/**
 * Refusals decided while planning, so that only the write concerned fails, never the
 * writes grouped with it (as a failure while staging or applying the unit would):
 * `table` throws if a record text cannot go to this table at all (its folder's place is
 * taken); `occupied` throws for a record text whose file name something else holds.
 */
export interface WriteChecks {
  table(table: string): void;
  occupied(table: string, id: string): never;
}

interface Slot {
  table: string;
  id: string;
  text: string | null;
}

const key = (table: string, id: string) => table + '\0' + id;

export class Plan {
  private readonly overlay = new Map<string, Slot>();
  readonly changes: PlannedChange[] = [];
  /** Disk state of every record read, shared by a plan and its children. */
  private readonly before: Map<string, string | null | typeof OCCUPIED>;

  constructor(private readonly readDisk: DiskReader, private readonly checks: WriteChecks, private readonly parent?: Plan) {
    this.before = parent ? parent.before : new Map();
  }

  /** The record's text as of this point in the unit, or null if absent. */
  current(table: string, id: string): string | null {
    const k = key(table, id);
    const slot = this.overlay.get(k);
    if (slot) return slot.text;
    if (this.parent) return this.parent.current(table, id);
    const disk = this.onDisk(table, id);
    return disk === OCCUPIED ? null : disk;
  }

  write(table: string, id: string, text: string | null): void {
    if (text !== null) {
      this.checks.table(table);
      if (this.onDisk(table, id) === OCCUPIED) this.checks.occupied(table, id);
    }
    this.current(table, id); // makes sure the old version is known, for the journal
    this.overlay.set(key(table, id), { table, id, text });
    this.changes.push({ table, id, op: text === null ? 'delete' : 'put' });
  }

  /** A nested plan for a batch: merged into this one only if every op succeeds. */
  child(): Plan {
    return new Plan(this.readDisk, this.checks, this);
  }

  merge(child: Plan): void {
    for (const [k, slot] of child.overlay) this.overlay.set(k, slot);
    this.changes.push(...child.changes);
  }

  /** Final state of every record this unit writes, with its state before. */
  writes(): PlannedWrite[] {
    return [...this.overlay.entries()].map(([k, s]) => {
      const before = this.before.get(k);
      return { table: s.table, id: s.id, text: s.text, before: before === OCCUPIED || before === undefined ? null : before };
    });
  }

  /** The record's state on disk before the unit, read once and shared with child plans. */
  private onDisk(table: string, id: string): string | null | typeof OCCUPIED {
    const k = key(table, id);
    if (!this.before.has(k)) this.before.set(k, this.readDisk(table, id));
    return this.before.get(k)!;
  }
}
