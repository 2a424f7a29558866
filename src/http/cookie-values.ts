/**
 * Most values of one cookie tried per request. An app can toss cookies to its sibling
 * app hosts (they share a parent domain: `<user>.<apps domain>`, and with a shared apps
 * domain all owners' apps do), once per path prefix of the address it wants to spoil;
 * the browser sends the longest paths first, so the genuine cookie (Path=/) comes last.
 * An address has a couple of prefixes per folder level, so 32 covers every address
 * freehold serves short of one nested a dozen folders deep; each try is one token check.
 */
export const MAX_COOKIE_CANDIDATES = 32;

/**
 * Every value sent under the cookie names `wanted` accepts, in the order sent, each once.
 * Read from the header: parsed cookies keep one value per name, and which one is up to
 * the parser, not the page.
 */
export function cookieValues(header: string | undefined, wanted: (name: string) => boolean): string[] {
  if (!header) return [];
  const out: string[] = [];
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at <= 0 || !wanted(part.slice(0, at).trim())) continue;
    const value = part.slice(at + 1).trim();
    if (value !== '' && !out.includes(value)) out.push(value);
    if (out.length === MAX_COOKIE_CANDIDATES) break;
  }
  return out;
}
