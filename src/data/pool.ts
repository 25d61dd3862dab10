/** A small promise pool for I/O-bound work (image decoding and encoding run on libuv's threads). */

/**
 * Runs `task(i)` for i in [0, n) with at most `concurrency` in flight. Stops starting new tasks
 * once `shouldStop()` is true. The first error thrown by a task rejects the whole run.
 */
export async function pool(
  n: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
  shouldStop: () => boolean = () => false,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && !shouldStop() && next < n) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, n)) }, worker));
}
