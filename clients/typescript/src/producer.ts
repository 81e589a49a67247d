import * as grpc from "@grpc/grpc-js";
import { backoffMs, Connection, type Bootstrap } from "./connection";
import { Deque } from "./deque";
import { StaveError } from "./errors";
import type { PublishRecord } from "./generated/stave/v1/PublishRecord";
import type { PublishRequest } from "./generated/stave/v1/PublishRequest";
import type { PublishResponse__Output } from "./generated/stave/v1/PublishResponse";
import { toBuffer, toWireHeaders, type Bytes, type HeadersInit, type ProducerRecord, type RecordMetadata } from "./records";
import { uuidv7 } from "./uuid";

/** Options of {@link Producer}. */
export interface ProducerOptions {
  /** Nodes to contact, `"host:port[,host:port...]"` or a list; any node takes every record. */
  bootstrap: Bootstrap;
  /**
   * How long a record may take, retries included, from publish() to its answer (default
   * 30,000 ms). Retriable failures are retried with the record's id until then; then the
   * record's promise rejects with the last error.
   */
  deliveryTimeoutMs?: number;
  /** How long a request may go unanswered before its stream is restarted and its records retried (default 15,000 ms). */
  requestTimeoutMs?: number;
  /**
   * How long records wait to be gathered into a request (default 0: what is published in
   * the same tick of the event loop goes together, and records published while requests
   * are in flight go in the next).
   */
  lingerMs?: number;
  /** Records per request, at most 10,000 (the server's limit; default 10,000). */
  batchRecordsMax?: number;
  /** Approximate bytes per request (default 4 MiB; the server's message limit is 16 MiB). */
  batchBytesMax?: number;
  /** Requests in flight on the stream at once (default 4). */
  inFlightMax?: number;
  /**
   * UNKNOWN_TOPIC is retried for this long after a record's first try (default 2,000 ms):
   * a topic just created may not be known to every node yet.
   */
  unknownTopicRetryMs?: number;
}

/** Options of one {@link Producer.publish}. */
export interface PublishOptions {
  /** Routes the record: partition = murmur2(key) % partitions. Unset: routed by its id. */
  key?: Bytes | null;
  /** Headers; an `id` header given here is the record's message id (never replaced). */
  headers?: HeadersInit;
  /** This partition, no routing. */
  partition?: number;
  /** Milliseconds since the Unix epoch; unset: when the node takes the record. */
  timestampMs?: number;
}

/** publishBatch()'s rejection: the first failure, and every record's outcome. */
export class PublishBatchError extends StaveError {
  /** One per record, in order: its metadata, or its error. */
  readonly results: ReadonlyArray<RecordMetadata | StaveError>;

  constructor(first: StaveError, results: ReadonlyArray<RecordMetadata | StaveError>) {
    const failed = results.filter((result) => result instanceof StaveError).length;
    super(first.code, `${failed} of ${results.length} records failed, first: ${first.message}`, {
      grpcCode: first.grpcCode,
      leaderAddr: first.leaderAddr,
      cause: first,
    });
    this.name = "PublishBatchError";
    this.results = results;
  }
}

type Settle = (error: StaveError | undefined, metadata: RecordMetadata | undefined) => void;

interface PendingRecord {
  readonly wire: PublishRecord;
  readonly id: string;
  readonly bytes: number;
  readonly deadlineMs: number;
  readonly firstTryMs: number;
  attempts: number;
  lastError: StaveError | undefined;
  readonly settle: Settle;
}

interface InFlightRequest {
  readonly sequence: number;
  readonly records: PendingRecord[];
  readonly sentMs: number;
}

interface RetryGroup {
  readonly readyMs: number;
  readonly records: PendingRecord[];
}

const RECORDS_PER_REQUEST_MAX = 10_000;
const TICK_MS = 250;

/**
 * Publishes records through the record API (PublishStream): records are gathered into
 * requests, pipelined on one stream (so records of one partition keep their order), and
 * retried with the same message ids on retriable errors, so a retry is recognised by the
 * node (`duplicate: true`, the first write's offset) and written once.
 *
 * ```ts
 * const producer = new Producer({ bootstrap: "127.0.0.1:7070" });
 * const meta = await producer.publish("orders", "hello", { key: "customer-1" });
 * await producer.close();
 * ```
 */
export class Producer {
  private readonly connection: Connection;
  private readonly deliveryTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly lingerMs: number;
  private readonly batchRecordsMax: number;
  private readonly batchBytesMax: number;
  private readonly inFlightMax: number;
  private readonly unknownTopicRetryMs: number;

  private readonly queue = new Deque<PendingRecord>();
  private retries: RetryGroup[] = [];
  private inFlight: InFlightRequest[] = [];
  private stream: grpc.ClientDuplexStream<PublishRequest, PublishResponse__Output> | undefined;
  private streamFailures = 0;
  private reopenAtMs = 0;
  private sequence = 0;
  private unsettled = 0;
  private pumpScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private flushWaiters: Array<() => void> = [];
  private closed = false;

  constructor(options: ProducerOptions) {
    this.connection = new Connection(options.bootstrap);
    this.deliveryTimeoutMs = options.deliveryTimeoutMs ?? 30_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
    this.lingerMs = options.lingerMs ?? 0;
    this.batchRecordsMax = Math.max(1, Math.min(options.batchRecordsMax ?? RECORDS_PER_REQUEST_MAX, RECORDS_PER_REQUEST_MAX));
    this.batchBytesMax = options.batchBytesMax ?? 4 * 1024 * 1024;
    this.inFlightMax = Math.max(1, options.inFlightMax ?? 4);
    this.unknownTopicRetryMs = options.unknownTopicRetryMs ?? 2_000;
  }

  /**
   * Publishes one record; resolves once the node has written it (or found its id written
   * before: `duplicate`). Rejects with a StaveError carrying the server's code (e.g.
   * UNKNOWN_TOPIC, INVALID_TOPIC_NAME, UNKNOWN_PARTITION, INVALID_REQUEST) or, after the
   * delivery timeout, the last retriable error.
   */
  publish(topic: string, value: Bytes, options: PublishOptions = {}): Promise<RecordMetadata> {
    return new Promise<RecordMetadata>((resolve, reject) => {
      this.enqueue({ topic, value, ...options }, (error, metadata) => (error ? reject(error) : resolve(metadata!)));
      this.schedulePump();
    });
  }

  /**
   * Publishes many records together (one request when they fit in one: up to
   * `batchRecordsMax` records). Resolves with every record's metadata, in order; rejects
   * with a {@link PublishBatchError} (its `results` hold every record's outcome) if any record
   * failed.
   */
  publishBatch(records: readonly ProducerRecord[]): Promise<RecordMetadata[]> {
    if (records.length === 0) return Promise.resolve([]);
    return new Promise<RecordMetadata[]>((resolve, reject) => {
      const results: Array<RecordMetadata | StaveError> = new Array(records.length);
      let remaining = records.length;
      let firstError: StaveError | undefined;
      records.forEach((record, index) => {
        this.enqueue(record, (error, metadata) => {
          results[index] = error ?? metadata!;
          if (error && !firstError) firstError = error;
          if (--remaining === 0) {
            if (firstError) reject(new PublishBatchError(firstError, results));
            else resolve(results as RecordMetadata[]);
          }
        });
      });
      this.pump();
    });
  }

  /** Resolves once every record published so far has its answer (written or failed). */
  flush(): Promise<void> {
    if (this.unsettled === 0) return Promise.resolve();
    this.pump();
    return new Promise<void>((resolve) => this.flushWaiters.push(resolve));
  }

  /** Flushes, then closes the stream and the connection. Later publishes reject with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.stream?.end();
    this.stream = undefined;
    this.connection.close();
  }

  private enqueue(record: ProducerRecord, settle: Settle): void {
    if (this.closed) {
      settle(StaveError.closed("producer"), undefined);
      return;
    }
    let pending: PendingRecord;
    try {
      pending = this.toPending(record, settle);
    } catch (error) {
      settle(new StaveError("INVALID_REQUEST", (error as Error).message, { cause: error }), undefined);
      return;
    }
    this.unsettled++;
    this.queue.push(pending);
  }

  private toPending(record: ProducerRecord, settle: Settle): PendingRecord {
    if (typeof record.topic !== "string") throw new TypeError("topic must be a string");
    if (record.value === undefined || record.value === null) throw new TypeError("value must be a string or a Uint8Array");
    const value = toBuffer(record.value);
    const { wire: headers, id: givenId } = toWireHeaders(record.headers);
    let id = givenId;
    if (id === undefined) {
      id = uuidv7();
      headers.push({ key: "id", value: Buffer.from(id, "latin1") });
    }
    const wire: PublishRecord = { topic: record.topic, value, headers };
    let bytes = 24 + record.topic.length + value.length;
    for (const header of headers) bytes += 4 + header.key!.length + (header.value as Buffer).length;
    if (record.key !== undefined && record.key !== null) {
      const key = toBuffer(record.key);
      wire.key = key;
      bytes += key.length;
    }
    if (record.partition !== undefined) wire.partition = record.partition;
    if (record.timestampMs !== undefined) wire.timestamp_ms = record.timestampMs;
    const now = Date.now();
    return {
      wire, id, bytes, settle,
      deadlineMs: now + this.deliveryTimeoutMs,
      firstTryMs: now,
      attempts: 0,
      lastError: undefined,
    };
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    const run = () => {
      this.pumpScheduled = false;
      this.pump();
    };
    if (this.lingerMs > 0) setTimeout(run, this.lingerMs);
    else setImmediate(run);
  }

  /** Sends what may be sent now, and arms the timer for what must wait. */
  private pump(): void {
    if (this.closed && this.unsettled === 0) return;
    const now = Date.now();
    if (!this.stream && (this.queue.length > 0 || this.retries.length > 0)) {
      if (now >= this.reopenAtMs) this.openStream();
      else this.expireWaiting(now);
    }
    while (this.stream && this.inFlight.length < this.inFlightMax) {
      const records = this.takeBatch(now);
      if (records.length === 0) break;
      this.send(records, now);
    }
    this.armTimer(now);
  }

  private openStream(): void {
    const call = this.connection.client().PublishStream();
    this.stream = call;
    call.on("data", (response: PublishResponse__Output) => {
      if (this.stream === call) this.onResponse(response);
    });
    call.on("error", (error: Error) => {
      if (this.stream === call) this.onStreamFailure(StaveError.fromGrpc(error, "publish stream"));
    });
    call.on("end", () => {
      if (this.stream === call) {
        this.onStreamFailure(new StaveError("GRPC", "publish stream ended by the node", { grpcCode: grpc.status.UNAVAILABLE }));
      }
    });
  }

  /** Up to a request's worth: ready retries first (they are older), then new records. */
  private takeBatch(now: number): PendingRecord[] {
    const batch: PendingRecord[] = [];
    let bytes = 0;
    const fits = (record: PendingRecord) =>
      batch.length < this.batchRecordsMax && (batch.length === 0 || bytes + record.bytes <= this.batchBytesMax);
    const take = (record: PendingRecord) => {
      if (now >= record.deadlineMs) {
        this.fail(record, record.lastError ?? new StaveError("REQUEST_TIMED_OUT", `delivery timeout (${this.deliveryTimeoutMs} ms) passed before the record was sent`));
        return;
      }
      batch.push(record);
      bytes += record.bytes;
    };
    while (this.retries.length > 0 && this.retries[0].readyMs <= now) {
      const group = this.retries[0];
      while (group.records.length > 0 && fits(group.records[0])) take(group.records.shift()!);
      if (group.records.length > 0) return batch;
      this.retries.shift();
    }
    for (let next = this.queue.peek(); next && fits(next); next = this.queue.peek()) take(this.queue.shift()!);
    return batch;
  }

  private send(records: PendingRecord[], now: number): void {
    const sequence = ++this.sequence;
    const wire = new Array<PublishRecord>(records.length);
    for (let i = 0; i < records.length; i++) {
      records[i].attempts++;
      wire[i] = records[i].wire;
    }
    this.inFlight.push({ sequence, records, sentMs: now });
    this.stream!.write({ records: wire, sequence });
  }

  private onResponse(response: PublishResponse__Output): void {
    const sequence = Number(response.sequence);
    const index = this.inFlight.findIndex((request) => request.sequence === sequence);
    if (index < 0) return; // answer to a request already given up on
    const [request] = this.inFlight.splice(index, 1);
    this.streamFailures = 0;
    const now = Date.now();
    const retry: PendingRecord[] = [];
    const results = response.results;
    for (let i = 0; i < request.records.length; i++) {
      const record = request.records[i];
      const result = results[i];
      if (!result) {
        this.fail(record, new StaveError("INTERNAL", `the node answered ${results.length} of ${request.records.length} records`));
        continue;
      }
      const error = StaveError.fromWire(result.error, `publish to ${record.wire.topic}`);
      if (!error) {
        this.succeed(record, {
          topic: record.wire.topic!,
          partition: result.partition,
          offset: BigInt(result.offset),
          duplicate: result.duplicate,
          id: result.id || record.id,
        });
      } else if (this.mayRetry(record, error, now)) {
        record.lastError = error;
        retry.push(record);
      } else {
        this.fail(record, error);
      }
    }
    if (retry.length > 0) this.scheduleRetry(retry, now);
    this.pump();
  }

  private mayRetry(record: PendingRecord, error: StaveError, now: number): boolean {
    const retriable = error.retriable || (error.code === "UNKNOWN_TOPIC" && now - record.firstTryMs < this.unknownTopicRetryMs);
    return retriable && now < record.deadlineMs;
  }

  private scheduleRetry(records: PendingRecord[], now: number): void {
    const attempts = records.reduce((most, record) => Math.max(most, record.attempts), 0);
    const storageFull = records.some((record) => record.lastError?.code === "STORAGE_FULL");
    const pauseMs = storageFull ? Math.max(1000, backoffMs(attempts, 5000)) : backoffMs(attempts - 1);
    const readyMs = now + pauseMs;
    // Keep the groups in ready order (every pause is at most a few seconds).
    let at = this.retries.length;
    while (at > 0 && this.retries[at - 1].readyMs > readyMs) at--;
    this.retries.splice(at, 0, { readyMs, records });
  }

  /** The stream broke: every request in flight is retried (same ids) on a new stream. */
  private onStreamFailure(error: StaveError): void {
    const call = this.stream;
    this.stream = undefined;
    call?.cancel();
    const now = Date.now();
    this.reopenAtMs = now + backoffMs(this.streamFailures++);
    if (error.grpcCode === grpc.status.UNAVAILABLE) this.connection.rotate();
    const requests = this.inFlight;
    this.inFlight = [];
    const retry: PendingRecord[] = [];
    for (const request of requests) {
      for (const record of request.records) {
        if ((error.retriable || error.grpcCode === grpc.status.CANCELLED) && now < record.deadlineMs) {
          record.lastError = error;
          retry.push(record);
        } else {
          this.fail(record, error);
        }
      }
    }
    if (retry.length > 0) this.retries.unshift({ readyMs: this.reopenAtMs, records: retry });
    // Records never sent keep the error to report should their delivery timeout pass.
    for (const group of this.retries) for (const record of group.records) record.lastError ??= error;
    this.pump();
  }

  /** While no stream is open: records whose delivery timeout passed fail with their last error. */
  private expireWaiting(now: number): void {
    const expired = (record: PendingRecord) => now >= record.deadlineMs;
    for (const group of this.retries) {
      const kept = group.records.filter((record) => !expired(record));
      for (const record of group.records) if (expired(record)) this.fail(record, record.lastError!);
      group.records.splice(0, group.records.length, ...kept);
    }
    this.retries = this.retries.filter((group) => group.records.length > 0);
    const first = this.queue.peek();
    if (first && expired(first)) {
      for (const record of this.queue.filter((record) => !expired(record))) {
        this.fail(record, record.lastError ?? new StaveError("GRPC", "no node reachable", { grpcCode: grpc.status.UNAVAILABLE }));
      }
    }
  }

  /** One timer: retries coming due, a stream to reopen, requests unanswered for too long. */
  private armTimer(now: number): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.unsettled === 0) return;
    let wakeMs = now + TICK_MS;
    if (this.retries.length > 0) wakeMs = Math.min(wakeMs, this.retries[0].readyMs);
    if (!this.stream) wakeMs = Math.min(wakeMs, Math.max(this.reopenAtMs, now + 1));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const oldest = this.inFlight[0];
      if (this.stream && oldest && Date.now() - oldest.sentMs > this.requestTimeoutMs) {
        this.onStreamFailure(new StaveError("GRPC", `no answer within ${this.requestTimeoutMs} ms`, { grpcCode: grpc.status.DEADLINE_EXCEEDED }));
        return;
      }
      this.pump();
    }, Math.max(0, wakeMs - now));
  }

  private succeed(record: PendingRecord, metadata: RecordMetadata): void {
    this.settled();
    record.settle(undefined, metadata);
  }

  private fail(record: PendingRecord, error: StaveError): void {
    this.settled();
    record.settle(error, undefined);
  }

  private settled(): void {
    if (--this.unsettled === 0 && this.flushWaiters.length > 0) {
      const waiters = this.flushWaiters;
      this.flushWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
