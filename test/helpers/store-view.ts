/** Returned by a storeView override to keep the store's own member. */
export const OWN = Symbol('own');

/** The store with some members replaced: `override` gives the replacement, or OWN. Methods stay bound to the store. */
export function storeView<T extends object>(store: T, override: (prop: string | symbol) => unknown): T {
  return new Proxy(store, {
    get(target, prop) {
      const replaced = override(prop);
      if (replaced !== OWN) return replaced;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
