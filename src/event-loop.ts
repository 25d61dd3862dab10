/**
 * Lets the event loop run (timers, I/O, signal handlers) before continuing: long loops of synchronous
 * model calls await this between iterations so that a server stays responsive, Ctrl-C is heard, and
 * a test worker can answer its runner.
 */
export const nextTurn = (): Promise<void> =>
  new Promise<void>((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
