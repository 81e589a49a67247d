import type { ConsumeStream } from "./consume-stream";
import { Deque } from "./deque";
import { StaveError } from "./errors";
import type { ConsumedRecord__Output } from "./generated/stave/v1/ConsumedRecord";
import { creditCost, fromWireRecord, type StaveRecord } from "./records";

interface Chunk {
  readonly stream: ConsumeStream;
  readonly records: ConsumedRecord__Output[];
  index: number;
}

/**
 * Records pushed by one or more Consume streams, handed to the application one at a time
 * (poll, or `for await`), with credit re-granted to the stream each record came from.
 * `R` is the record type handed out ({@link RecordSource.convert} makes it).
 */
export abstract class RecordSource<R extends StaveRecord = StaveRecord> implements AsyncIterable<R> {
  private readonly chunks = new Deque<Chunk>();
  private waiters: Array<() => void> = [];
  /** A failure that ended the source; poll() throws it once the buffer is empty. */
  protected failure: StaveError | undefined;
  /** close() was called: poll() returns null, iteration ends. */
  protected closed = false;

  /**
   * The next record: at once if one is buffered, else when one arrives. Resolves `null`
   * once `timeoutMs` passes without a record (default: wait for ever) or after close();
   * rejects with the StaveError that ended the stream (e.g. UNKNOWN_TOPIC).
   */
  async poll(timeoutMs?: number): Promise<R | null> {
    const deadlineMs = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    for (;;) {
      const record = this.take();
      if (record) return record;
      if (this.closed) return null;
      if (this.failure) throw this.failure;
      const leftMs = deadlineMs === undefined ? undefined : deadlineMs - Date.now();
      if (leftMs !== undefined && leftMs <= 0) return null;
      await this.wait(leftMs);
    }
  }

  /**
   * `for await (const record of source)`: every record, until close() (or a failure, thrown).
   * Leaving the loop (break) does not close the source.
   */
  [Symbol.asyncIterator](): AsyncIterator<R> {
    return {
      next: (): Promise<IteratorResult<R>> => {
        const record = this.take();
        if (record) return Promise.resolve({ value: record, done: false });
        return this.poll().then((next) => (next ? { value: next, done: false } : { value: undefined, done: true }));
      },
      return: (): Promise<IteratorResult<R>> => Promise.resolve({ value: undefined, done: true }),
    };
  }

  /** Called with each record as the application takes it. */
  protected abstract onTaken(record: R): void;

  /** The record handed out for a pushed one. */
  protected convert(wire: ConsumedRecord__Output): R {
    return fromWireRecord(wire) as R;
  }

  protected push(stream: ConsumeStream, records: ConsumedRecord__Output[]): void {
    if (records.length === 0) return;
    this.chunks.push({ stream, records, index: 0 });
    this.wake();
  }

  /** Ends waits: after a failure or close(). */
  protected wake(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Drops buffered records (after close()). */
  protected discardBuffered(): void {
    this.chunks.drain();
  }

  private take(): R | undefined {
    const chunk = this.chunks.peek();
    if (!chunk || this.closed) return undefined;
    const wire = chunk.records[chunk.index];
    chunk.records[chunk.index] = undefined as unknown as ConsumedRecord__Output;
    chunk.index++;
    if (chunk.index >= chunk.records.length) this.chunks.shift();
    const record = this.convert(wire);
    chunk.stream.taken(1, chunk.stream.countsBytes ? creditCost(record) : 0);
    this.onTaken(record);
    return record;
  }

  private wait(timeoutMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((waiter) => waiter !== done);
          resolve();
        }, timeoutMs);
      }
    });
  }
}
