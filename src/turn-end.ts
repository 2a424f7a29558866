/**
 * Work to do once the current turn of the event loop has run its I/O callbacks: the
 * SQLite store's read transaction and change stamp, the access lines of the requests
 * answered in the turn. All of it runs from one `setImmediate` per turn, in the order
 * it was asked for; what is asked for while it runs waits for the next turn.
 */

const due: Array<() => void> = [];
let scheduled = false;

function runDue(): void {
  scheduled = false;
  for (const fn of due.splice(0)) {
    try {
      fn();
    } catch (error) {
      // As a throw in its own setImmediate would be: uncaught, without keeping the rest from running.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
}

export function atTurnEnd(fn: () => void): void {
  due.push(fn);
  if (!scheduled) {
    scheduled = true;
    setImmediate(runDue);
  }
}
