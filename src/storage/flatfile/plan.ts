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

/** Reads the current file text of a record (null if absent). */
export type DiskReader = (table: string, id: string) => string | null;

/** Throws if a record text cannot go to this table at all (its folder's place is taken), before anything is decided. */
export type TableCheck = (table: string) => void;

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
  private readonly before: Map<string, string | null>;

  constructor(private readonly readDisk: DiskReader, private readonly parent?: Plan, private readonly checkTable?: TableCheck) {
    this.before = parent ? parent.before : new Map();
  }

  /** The record's text as of this point in the unit, or null if absent. */
  current(table: string, id: string): string | null {
    const k = key(table, id);
    const slot = this.overlay.get(k);
    if (slot) return slot.text;
    if (this.parent) return this.parent.current(table, id);
    if (!this.before.has(k)) this.before.set(k, this.readDisk(table, id));
    return this.before.get(k)!;
  }

  write(table: string, id: string, text: string | null): void {
    if (text !== null) this.checkTable?.(table);
    this.current(table, id); // makes sure the old version is known, for the journal
    this.overlay.set(key(table, id), { table, id, text });
    this.changes.push({ table, id, op: text === null ? 'delete' : 'put' });
  }

  /** A nested plan for a batch: merged into this one only if every op succeeds. */
  child(): Plan {
    return new Plan(this.readDisk, this, this.checkTable);
  }

  merge(child: Plan): void {
    for (const [k, slot] of child.overlay) this.overlay.set(k, slot);
    this.changes.push(...child.changes);
  }

  /** Final state of every record this unit writes, with its state before. */
  writes(): PlannedWrite[] {
    return [...this.overlay.entries()].map(([k, s]) => ({ table: s.table, id: s.id, text: s.text, before: this.before.get(k) ?? null }));
  }
}
