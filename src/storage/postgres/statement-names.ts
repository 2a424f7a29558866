/**
 * Names for generated SQL (queries and counts), so that each pooled connection
 * prepares a query shape once and then only binds and executes it. An unnamed
 * statement is parsed, analysed and planned on every call, which measured ~40% of
 * PostgreSQL's CPU for an indexed 50-record page (≈130 → ≈85 µs per query), and
 * PostgreSQL can switch a named one to a generic plan when that is no costlier.
 *
 * The text holds no values (they are bound), only the shape: field paths, operators
 * and sort keys, so an app's queries come in few shapes. Still, shapes are chosen by
 * clients, and every connection keeps each statement it prepared until it closes: so
 * only the first `limit` shapes get a name, and later ones run unnamed, as before.
 * Names never change meaning, which `pg` requires (it refuses a known name with a
 * different text).
 */
export class StatementNames {
  private readonly names = new Map<string, string>();

  constructor(
    private readonly prefix = 'fh_q',
    private readonly limit = DEFAULT_LIMIT,
  ) {}

  /** The name for `text`, or undefined (unnamed) once `limit` shapes have names. */
  of(text: string): string | undefined {
    let name = this.names.get(text);
    if (name === undefined && this.names.size < this.limit) {
      name = `${this.prefix}${this.names.size}`;
      this.names.set(text, name);
    }
    return name;
  }
}

/** Shapes named per store: generous for an app's query shapes, bounded for memory on each connection. */
const DEFAULT_LIMIT = 200;
