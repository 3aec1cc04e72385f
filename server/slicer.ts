/**
 * Keeps the event loop's turns short. Node accepts at most about one new connection per turn of
 * a busy event loop (measured: a loop whose turns take 100 ms accepted 21 of 50 waiting
 * connections in 25 turns), and takes one connection per turn from the supervisor too (each
 * hand-off waits for the worker's acknowledgement). A worker streaming to hundreds of clients did
 * 250-600 ms of work per turn: a flash crowd's late clients waited 10-25 s to be let in.
 *
 * Responses ask `pause()` before each piece of work; once the current turn has used its slice,
 * they wait until the loop has polled again (new connections and requests come in), then go on.
 */
export class Slicer {
  private readonly sliceMs: number;
  private start = 0;
  private armed = false;
  /** Times a response waited for the next turn (tests, metrics). */
  pauses = 0;

  constructor(sliceMs: number) {
    this.sliceMs = sliceMs;
  }

  /** undefined while this turn has time left; else a promise that resolves after the loop's next poll. */
  pause(): Promise<void> | undefined {
    const now = performance.now();
    if (!this.armed) {
      this.armed = true;
      this.start = now;
      // The check phase starts a new slice (setImmediate runs after this turn's poll).
      setImmediate(() => {
        this.armed = false;
      });
    }
    if (now - this.start < this.sliceMs) return undefined;
    this.pauses++;
    // Two hops: the first runs in this turn's check phase, the second after the next poll.
    return new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
  }
}
