import { ConsumeStream, type StreamSink } from "./consume-stream";
import { Connection, type Bootstrap } from "./connection";
import { StaveError } from "./errors";
import type { ConsumedRecord__Output } from "./generated/stave/v1/ConsumedRecord";
import type { SettleAction } from "./generated/stave/v1/SettleAction";
import type { Settled__Output } from "./generated/stave/v1/Settled";
import type { Settlement } from "./generated/stave/v1/Settlement";
import type { Subscribe } from "./generated/stave/v1/Subscribe";
import { fromWireRecord, type StaveRecord } from "./records";
import { RecordSource } from "./source";

/** The most settlements in one Settle message; more go in the next. */
export const SETTLEMENTS_PER_MESSAGE_MAX = 1000;

/** How long close() waits for settlements made before it to be answered. */
const CLOSE_WAIT_MS = 10_000;

/**
 * The node's bounds on a settlement (proto: Settlement). It refuses a Settle message with one
 * settlement past them by ending the whole stream, so the client keeps within them: a longer
 * delay is refused here, a longer reason cut (the proto keeps "up to 1 KiB").
 */
export const DELAY_MS_MAX = 86_400_000;
export const REASON_BYTES_MAX = 1024;

/** Options of {@link QueueConsumer}. */
export interface QueueConsumerOptions {
  /** Nodes to contact, `"host:port[,host:port...]"` or a list. */
  bootstrap: Bootstrap;
  /** The queue group: its members share the records of the topics one by one. */
  group: string;
  /** Topic names, or patterns of dot-separated words (`v1.user.*`, `v1.#`). */
  topics: readonly string[];
  /**
   * Where a new group starts in each partition: true: the earliest record; false (default):
   * only records written from now on.
   */
  fromBeginning?: boolean;
  /** The most records this member holds unsettled at once (default 64). */
  credit?: number;
  /**
   * How long a delivery stays locked to its member before it is delivered again. The
   * group's setting (set by the member that starts it); unset: the group's (new group: 30,000).
   */
  lockMs?: number;
  /**
   * Deliveries after which a released record, or one whose lock expired, goes to the
   * dead-letter topic instead. The group's; unset: the group's (new group: 5).
   */
  maxDeliveries?: number;
  /**
   * `"key"`: no two records with the same key in flight in the group at once, a key's records
   * in offset order; `"none"` (default): any order. A member asking for another ordering than
   * the group's is refused GROUP_MISMATCH (poll() rejects).
   */
  ordering?: "none" | "key";
  /** How long a broken stream is retried before poll() rejects (default 30,000 ms). */
  reconnectTimeoutMs?: number;
}

/** A record delivered by a queue group. */
export interface QueueRecord extends StaveRecord {
  /** How many times the record was delivered, this delivery included. */
  deliveryCount: number;
  /** When its lock to this member expires (milliseconds since the Unix epoch). */
  lockDeadlineMs: number;
}

/** Options of {@link QueueConsumer.release}. */
export interface ReleaseOptions {
  /** Not delivered again before this many milliseconds (default 0; at most one day). */
  delayMs?: number;
  /** Why; a dead letter carries it in its `stave-dlq-reason` header (cut to 1 KiB of UTF-8). */
  reason?: string;
}

interface PendingSettlement {
  readonly delivery: string;
  readonly message: Settlement;
  readonly resolve: () => void;
  readonly reject: (error: StaveError) => void;
  /** Resolves once the settlement is answered or failed. */
  readonly answered: Promise<void>;
}

/**
 * A member of a queue group, on one Consume stream in queue mode: the group's members share
 * every partition record by record, each record locked to the member it went to until that
 * member settles it (ack, release, reject; extend renews the lock) or the lock expires.
 *
 * ```ts
 * const queue = new QueueConsumer({ bootstrap: "127.0.0.1:7070", group: "mailer", topics: ["emails"] });
 * for await (const record of queue) {
 *   try { await send(record.value); await queue.ack(record); }
 *   catch (error) { await queue.reject(record, String(error)); }
 * }
 * ```
 *
 * Every record handed out must be settled once: `credit` is the most records the member
 * holds, and one record of credit goes back each time an ack, release or reject of a record
 * it holds is answered. Settlements made in the same tick go out in one Settle message; each
 * returns a promise of its own answer.
 */
export class QueueConsumer extends RecordSource<QueueRecord> {
  /** The queue group this consumer belongs to. */
  readonly group: string;
  private readonly connection: Connection;
  private readonly stream: ConsumeStream;
  /** Deliveries the current call holds and no ack, release or reject has settled. */
  private readonly deliveries = new Set<string>();
  private waiting: PendingSettlement[] = [];
  private flushScheduled = false;
  private readonly inFlight = new Map<number, PendingSettlement[]>();
  private settleId = 0;
  private closing: Promise<void> | undefined;

  constructor(options: QueueConsumerOptions) {
    super();
    if (!options.group) throw new TypeError("group: give a queue group name");
    if (!options.topics || options.topics.length === 0) throw new TypeError("topics: give at least one topic or pattern");
    const ordering = options.ordering ?? "none";
    if (ordering !== "none" && ordering !== "key") throw new TypeError(`ordering: "none" or "key", not ${String(ordering)}`);
    this.group = options.group;
    this.connection = new Connection(options.bootstrap);
    const subscribe = (): Subscribe => ({
      topics: [...options.topics],
      group: options.group,
      mode: "CONSUME_MODE_QUEUE",
      queue: {
        ordering: ordering === "key" ? "QUEUE_ORDERING_KEY" : "QUEUE_ORDERING_NONE",
        ...(options.lockMs !== undefined ? { lock_ms: options.lockMs } : {}),
        ...(options.maxDeliveries !== undefined ? { max_deliveries: options.maxDeliveries } : {}),
      },
      ...(options.fromBeginning ? { earliest: true } : { latest: true }),
    });
    const sink: StreamSink = {
      onRecords: (stream, records) => {
        if (this.closed) return;
        for (const record of records) this.deliveries.add(deliveryKey(record.topic, record.partition, record.offset, record.delivery_count));
        this.push(stream, records);
      },
      onAssignment: () => undefined,
      onCommitted: () => undefined,
      onSettled: (_stream, settled) => this.onSettled(settled),
      onBroken: (_stream, error, retrying) => this.onBroken(error, retrying),
    };
    const window = { records: options.credit ?? 64, bytes: 0, manual: true };
    this.stream = new ConsumeStream(this.connection, subscribe, window, sink, options.reconnectTimeoutMs ?? 30_000);
    this.stream.start();
  }

  /** Done with `record`: it is never delivered again. */
  ack(record: QueueRecord): Promise<void> {
    return this.settle(record, "SETTLE_ACK");
  }

  /**
   * Deliver `record` again (to any member), now or after `delayMs`; past the group's
   * `maxDeliveries` it goes to the dead-letter topic instead.
   */
  release(record: QueueRecord, options: ReleaseOptions = {}): Promise<void> {
    return this.settle(record, "SETTLE_RELEASE", options.delayMs ?? 0, options.reason ?? "");
  }

  /** Send `record` to the dead-letter topic `_dlq.{group}.{topic}` now. */
  reject(record: QueueRecord, reason = ""): Promise<void> {
    return this.settle(record, "SETTLE_REJECT", 0, reason);
  }

  /** Keep `record` locked to this member for another lock period from now. */
  extend(record: QueueRecord): Promise<void> {
    return this.settle(record, "SETTLE_EXTEND");
  }

  /**
   * Waits (up to 10 s) for the settlements already made to be answered, then ends the stream
   * (the node releases what this member still holds: delivered again at once) and closes the
   * connection. poll() then returns null and iteration ends.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  protected override convert(wire: ConsumedRecord__Output): QueueRecord {
    const record = fromWireRecord(wire) as QueueRecord;
    record.deliveryCount = wire.delivery_count;
    record.lockDeadlineMs = Number(wire.lock_deadline_ms);
    return record;
  }

  protected onTaken(_record: QueueRecord): void {}

  /**
   * Queues one settlement; settlements of one tick go out together. The promise resolves
   * once the node settled it, or rejects with its StaveError (DELIVERY_NOT_HELD: this member
   * does not hold that delivery, e.g. settled already or its lock expired).
   */
  private settle(record: QueueRecord, action: SettleAction, delayMs = 0, reason = ""): Promise<void> {
    if (this.closed || this.closing) return Promise.reject(StaveError.closed("queue consumer"));
    if (!(delayMs >= 0 && delayMs <= DELAY_MS_MAX)) {
      return Promise.reject(new StaveError("INVALID_REQUEST", `release: delayMs is 0 to ${DELAY_MS_MAX} (one day), not ${delayMs}`));
    }
    const message: Settlement = {
      topic: record.topic,
      partition: record.partition,
      offset: record.offset.toString(),
      delivery_count: record.deliveryCount,
      action,
      delay_ms: delayMs,
      reason: reasonWithinBounds(reason),
    };
    const delivery = deliveryKey(record.topic, record.partition, record.offset, record.deliveryCount);
    let resolve!: () => void;
    let reject!: (error: StaveError) => void;
    const outcome = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Also marks a rejection as handled: a settlement nobody awaits does not end the process.
    const answered = outcome.then(() => undefined, () => undefined);
    this.waiting.push({ delivery, message, resolve, reject, answered });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return outcome;
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, SETTLEMENTS_PER_MESSAGE_MAX);
      const id = ++this.settleId;
      this.inFlight.set(id, batch);
      if (!this.stream.settle({ id, settlements: batch.map((s) => s.message) })) {
        this.inFlight.delete(id);
        const error = this.failure ?? new StaveError("GRPC", "settle: the queue stream is reconnecting", { grpcCode: 14 });
        for (const settlement of batch) settlement.reject(error);
      }
    }
  }

  /** Completes a Settle's settlements, and gives credit back for the deliveries they ended. */
  private onSettled(settled: Settled__Output): void {
    const id = Number(settled.id);
    const batch = this.inFlight.get(id);
    if (!batch) return;
    this.inFlight.delete(id);
    let granted = 0;
    for (const settlement of batch) {
      if (settlement.message.action !== "SETTLE_EXTEND" && this.deliveries.delete(settlement.delivery)) granted++;
    }
    if (granted > 0 && !this.closed) this.stream.grant(granted);
    settleOutcomes(settled, batch.length).forEach((error, i) => {
      if (error) batch[i].reject(error);
      else batch[i].resolve();
    });
  }

  /** The node released what the call held: settlements not answered are lost with it. */
  private onBroken(error: StaveError, retrying: boolean): void {
    this.deliveries.clear();
    this.rejectSettlements(error);
    if (!retrying) {
      this.failure = error;
      this.wake();
    }
  }

  private rejectSettlements(error: StaveError): void {
    const pending = [...this.waiting, ...[...this.inFlight.values()].flat()];
    this.waiting = [];
    this.inFlight.clear();
    for (const settlement of pending) settlement.reject(error);
  }

  private async shutdown(): Promise<void> {
    const pending = [...this.waiting, ...[...this.inFlight.values()].flat()];
    if (pending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      });
      await Promise.race([Promise.all(pending.map((settlement) => settlement.answered)), timeout]);
      clearTimeout(timer);
    }
    this.closed = true;
    this.discardBuffered();
    this.stream.end();
    this.connection.close();
    this.rejectSettlements(StaveError.closed("queue consumer"));
    this.wake();
  }
}

/** `reason` cut to REASON_BYTES_MAX bytes of UTF-8, at a character boundary. */
export function reasonWithinBounds(reason: string): string {
  const bytes = Buffer.from(reason, "utf8");
  if (bytes.length <= REASON_BYTES_MAX) return reason;
  let end = REASON_BYTES_MAX;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

/**
 * The error (undefined: done) of each of `count` settlements, from a Settled's results: one
 * per settlement, in order. A node that failed a whole Settle answers one result for all of
 * them; no results at all is every one done (unset).
 */
export function settleOutcomes(settled: Settled__Output, count: number): Array<StaveError | undefined> {
  const errors = settled.results.map((result) => StaveError.fromWire(result, "settle"));
  if (errors.length === count) return errors;
  if (errors.length === 1) return Array.from({ length: count }, () => errors[0]);
  if (errors.length === 0) return Array.from({ length: count }, () => undefined);
  const missing = new StaveError("INTERNAL", `settle: the node answered ${errors.length} results for ${count} settlements`);
  return Array.from({ length: count }, (_, i) => (i < errors.length ? errors[i] : missing));
}

function deliveryKey(topic: string, partition: number, offset: bigint | string, deliveryCount: number): string {
  return `${topic}\u0000${partition}\u0000${offset}\u0000${deliveryCount}`;
}
