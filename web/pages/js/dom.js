// Small DOM helpers. Data only ever reaches the page through textContent and
// attributes, never innerHTML, so names from apps and users cannot inject markup.

/** Properties that parse HTML: never set from here, so data cannot become markup. */
const HTML_SINKS = new Set(['innerHTML', 'outerHTML', 'srcdoc']);

/**
 * Creates an element: `el('a', {href: '/x', className: 'y'}, 'text', child)`.
 * Props are DOM properties, except `data-*` and `aria-*`, which are attributes.
 * @param {string} tag
 * @param {Record<string, unknown>} [props]
 * @param {...(Node|string|null|undefined|false)} children
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (HTML_SINKS.has(key)) throw new Error(`el(): ${key} is not allowed; pass children instead`);
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('data-') || key.startsWith('aria-')) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** @param {string} id */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from the page`);
  return node;
}

/** Shows `text` in a message element, hiding it when text is empty. */
export function say(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

/**
 * Shows a status message of a kind ('error' | 'success' | 'info'), with an
 * optional list of problems under it (e.g. why an app package was refused).
 * @param {HTMLElement} node
 * @param {'error'|'success'|'info'|''} kind
 * @param {string} text
 * @param {string[]} [items]
 */
export function status(node, kind, text, items = []) {
  node.replaceChildren();
  node.className = kind ? `alert alert-${kind}` : '';
  if (!text) return;
  node.append(el('span', {}, text));
  if (items.length) node.append(el('ul', {}, ...items.map((item) => el('li', {}, item))));
}

/** A date for people, from epoch milliseconds. */
export function formatDate(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n <= 0) return '';
  return new Date(n).toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}

/** `1 record`, `2,000 records`: a count with its noun. */
export function plural(n, one, many) {
  return `${Number(n).toLocaleString()} ${n === 1 ? one : many}`;
}

/** A date with its time, from epoch milliseconds: for moments near enough that the hour matters. */
export function formatDateTime(ms) {
  const n = Number(ms);
  if (!Number.isFinite(n) || n <= 0) return '';
  return new Date(n).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
}

/** Disables a button while a promise runs, so double clicks don't send twice. */
export async function busy(button, work) {
  const hadFocus = document.activeElement === button;
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
    // Disabling took the keyboard focus off the button (to the page): give it back, unless the work moved it on.
    if (hadFocus && button.isConnected && (document.activeElement === document.body || document.activeElement === null)) button.focus();
  }
}

/**
 * After a list was drawn again without the row whose button was used (revoked, removed):
 * the keyboard focus, left on the page, goes to the list's first control, or to
 * `fallback` (the panel's heading) when none is left.
 */
export function refocus(list, fallback) {
  if (document.activeElement && document.activeElement !== document.body) return;
  const target = list.querySelector('button:not([disabled]), a[href]') ?? fallback;
  if (!target) return;
  if (!target.matches('button, a[href], input, select, textarea') && !target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
  target.focus();
}
