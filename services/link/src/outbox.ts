// What waits to be sent down one kiosk's stream. Bounded: a kiosk that stops reading
// cannot make the server hold an unbounded backlog for it (push returns false and
// the caller ends the stream).
export class StreamOutbox<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: ((done: boolean) => void) | undefined;
  private closed = false;

  constructor(private readonly limit: number) {}

  /** Closed: what is pushed now is dropped (the stream is ending). */
  get isClosed(): boolean {
    return this.closed;
  }

  push(item: T): boolean {
    if (this.closed) return true;
    if (this.items.length >= this.limit) return false;
    this.items.push(item);
    this.wake(false);
    return true;
  }

  /** Ends the stream after what is queued (and `last`, if given) has been sent. */
  close(last?: T) {
    if (this.closed) return;
    if (last !== undefined) this.items.push(last);
    this.closed = true;
    this.wake(true);
  }

  private wake(done: boolean) {
    const w = this.waiting;
    this.waiting = undefined;
    w?.(done);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const next = this.items.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.closed) return;
      await new Promise<boolean>((resolve) => (this.waiting = resolve));
    }
  }
}
