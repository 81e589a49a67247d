import * as grpc from "@grpc/grpc-js";
import { backoffMs, type Connection } from "./connection";
import { StaveError } from "./errors";
import type { Assignment__Output } from "./generated/stave/v1/Assignment";
import type { Commit } from "./generated/stave/v1/Commit";
import type { Committed__Output } from "./generated/stave/v1/Committed";
import type { Settle } from "./generated/stave/v1/Settle";
import type { Settled__Output } from "./generated/stave/v1/Settled";
import type { ConsumeRequest } from "./generated/stave/v1/ConsumeRequest";
import type { ConsumeResponse__Output } from "./generated/stave/v1/ConsumeResponse";
import type { ConsumedRecord__Output } from "./generated/stave/v1/ConsumedRecord";
import type { Subscribe } from "./generated/stave/v1/Subscribe";

/** What a {@link ConsumeStream} tells its owner. */
export interface StreamSink {
  onRecords(stream: ConsumeStream, records: ConsumedRecord__Output[]): void;
  onAssignment(stream: ConsumeStream, assignment: Assignment__Output): void;
  onCommitted(stream: ConsumeStream, committed: Committed__Output): void;
  /** A queue stream's answer to a Settle. */
  onSettled?(stream: ConsumeStream, settled: Settled__Output): void;
  /**
   * The call broke (or the node refused the subscribe). `retrying`: a new call is opened
   * after a pause, with a fresh `subscribe()`; otherwise the stream is done.
   */
  onBroken(stream: ConsumeStream, error: StaveError, retrying: boolean): void;
}

/** The credit window: records (and bytes; 0: no byte limit) the client holds at most. */
export interface CreditWindow {
  records: number;
  bytes: number;
  /**
   * The owner gives credit back itself ({@link ConsumeStream.grant}; a queue stream, as it
   * settles records), not as the application takes records. Counts records only.
   */
  manual?: boolean;
}

/**
 * One Consume call, kept open: it subscribes, grants credit as the application takes
 * records (the window is re-filled once half of it is used), and reopens itself on
 * retriable failures until `reconnectTimeoutMs` passes without a working call.
 */
export class ConsumeStream {
  /** Records pushed to the owner and not yet taken by the application. */
  private bufferedRecords = 0;
  private bufferedBytes = 0;
  /** Granted and not yet pushed. */
  private outstandingRecords = 0;
  private outstandingBytes = 0;
  private call: grpc.ClientDuplexStream<ConsumeRequest, ConsumeResponse__Output> | undefined;
  private pushedError: StaveError | undefined;
  private failures = 0;
  private brokenSinceMs: number | undefined;
  private reopenTimer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly connection: Connection,
    private readonly subscribe: () => Subscribe,
    private readonly window: CreditWindow,
    private readonly sink: StreamSink,
    private readonly reconnectTimeoutMs: number,
  ) {}

  start(): void {
    this.open();
  }

  /** Whether byte credit is counted (the owner then reports bytes in taken()). */
  get countsBytes(): boolean {
    return this.window.bytes > 0;
  }

  /** The application took records of this stream: re-grant once half the window is free. */
  taken(records: number, bytes: number): void {
    if (this.window.manual) return;
    this.bufferedRecords -= records;
    this.bufferedBytes -= bytes;
    this.maybeGrant();
  }

  /** Gives `records` of credit back (a manual window); false if no call is open. */
  grant(records: number): boolean {
    if (!this.call || this.done) return false;
    this.call.write({ credit: { records, bytes: 0 } });
    return true;
  }

  /** Sends a Settle (queue mode); false if no call is open. */
  settle(settle: Settle): boolean {
    if (!this.call || this.done) return false;
    this.call.write({ settle });
    return true;
  }

  /** Sends a Commit; false if no call is open. */
  commit(commit: Commit): boolean {
    if (!this.call || this.done) return false;
    this.call.write({ commit });
    return true;
  }

  /**
   * Ends the call: the node ends the stream (with a group it leaves the group then, and the
   * partitions go to the other members at once). The call is cancelled rather than
   * half-closed: after a half-close the node keeps the stream open while the client holds
   * unused credit, waiting for records the client no longer wants.
   */
  end(): void {
    this.cancel();
  }

  /** Cancels the call at once. */
  cancel(): void {
    this.done = true;
    if (this.reopenTimer) clearTimeout(this.reopenTimer);
    this.call?.cancel();
    this.call = undefined;
  }

  private open(): void {
    if (this.done) return;
    const call = this.connection.client().Consume();
    this.call = call;
    this.pushedError = undefined;
    this.outstandingRecords = 0;
    this.outstandingBytes = 0;
    call.on("data", (response: ConsumeResponse__Output) => {
      if (this.call === call) this.onResponse(response);
    });
    call.on("error", (error: Error) => {
      if (this.call === call) this.onBroken(this.pushedError ?? StaveError.fromGrpc(error, "consume stream"));
    });
    call.on("end", () => {
      if (this.call === call) {
        this.onBroken(this.pushedError ?? new StaveError("GRPC", "consume stream ended by the node", { grpcCode: grpc.status.UNAVAILABLE }));
      }
    });
    call.write({ subscribe: this.subscribe() });
    // A manual window starts full on every call: the node released what the last one held.
    if (this.window.manual) call.write({ credit: { records: this.window.records, bytes: 0 } });
    else this.maybeGrant();
  }

  private onResponse(response: ConsumeResponse__Output): void {
    switch (response.response) {
      case "records": {
        const records = response.records!.records;
        this.failures = 0;
        this.brokenSinceMs = undefined;
        this.outstandingRecords -= records.length;
        this.bufferedRecords += records.length;
        if (this.window.bytes > 0) {
          const bytes = wireCost(records);
          this.outstandingBytes -= bytes;
          this.bufferedBytes += bytes;
        }
        this.sink.onRecords(this, records);
        break;
      }
      case "assignment":
        this.failures = 0;
        this.brokenSinceMs = undefined;
        this.sink.onAssignment(this, response.assignment!);
        break;
      case "committed":
        this.sink.onCommitted(this, response.committed!);
        break;
      case "settled":
        this.sink.onSettled?.(this, response.settled!);
        break;
      case "error":
        this.pushedError = StaveError.fromWire(response.error, "consume") ??
          new StaveError("INTERNAL", "consume: the node pushed an error without a code");
        break;
    }
  }

  private maybeGrant(): void {
    if (!this.call || this.done) return;
    const heldRecords = this.outstandingRecords + Math.max(0, this.bufferedRecords);
    const heldBytes = this.outstandingBytes + Math.max(0, this.bufferedBytes);
    const needRecords = heldRecords <= this.window.records / 2;
    const needBytes = this.window.bytes > 0 && heldBytes <= this.window.bytes / 2;
    if (!needRecords && !needBytes) return;
    const records = needRecords ? this.window.records - heldRecords : 0;
    // Bytes 0 would lift the byte limit for good: with a limit, always grant at least 1.
    const bytes = this.window.bytes > 0 ? Math.max(1, this.window.bytes - heldBytes) : 0;
    this.outstandingRecords += records;
    this.outstandingBytes += bytes;
    this.call.write({ credit: { records, bytes } });
  }

  private onBroken(error: StaveError): void {
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    if (this.done) return;
    const now = Date.now();
    this.brokenSinceMs ??= now;
    const retrying = error.retriable && now - this.brokenSinceMs < this.reconnectTimeoutMs;
    this.sink.onBroken(this, error, retrying);
    if (!retrying) {
      this.done = true;
      return;
    }
    if (error.grpcCode === grpc.status.UNAVAILABLE) this.connection.rotate();
    this.reopenTimer = setTimeout(() => this.open(), backoffMs(this.failures++));
  }
}

function wireCost(records: ConsumedRecord__Output[]): number {
  let cost = 0;
  for (const record of records) {
    cost += 32 + record.value.length + (record.key ? record.key.length : 0) + Buffer.byteLength(record.topic);
    for (const header of record.headers) cost += Buffer.byteLength(header.key) + header.value.length;
  }
  return cost;
}
