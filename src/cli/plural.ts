/** `1 file`, `2 files`: a count with its noun, for the command line's summaries (plain digits, for scripts too). */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
