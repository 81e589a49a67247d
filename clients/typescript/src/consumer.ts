import { ConsumeStream, type StreamSink } from "./consume-stream";
import { Connection, type Bootstrap } from "./connection";
import { StaveError } from "./errors";
import type { Assignment__Output } from "./generated/stave/v1/Assignment";
import type { CommitOffset, CommitOffset__Output } from "./generated/stave/v1/CommitOffset";
import type { Committed__Output } from "./generated/stave/v1/Committed";
import type { ConsumedRecord__Output } from "./generated/stave/v1/ConsumedRecord";
import { partitionKey, type StaveRecord, type TopicPartitionOffset } from "./records";
import { RecordSource } from "./source";

/** Options of {@link Consumer}. */
export interface ConsumerOptions {
  /** Nodes to contact, `"host:port[,host:port...]"` or a list. */
  bootstrap: Bootstrap;
  /** The consumer group: its members share the partitions of the topics. */
  group: string;
  /**
   * Topic names, or patterns of dot-separated words (`v1.user.*`: one word, `v1.#`: any
   * number); topics created later that match join by themselves.
   */
  topics: readonly string[];
  /**
   * Where to start in partitions the group never committed: true: the earliest record;
   * false (default): only records written from now on.
   */
  fromBeginning?: boolean;
  /**
   * Commit the position of what the application took, every `autoCommitIntervalMs` and at
   * close() (default true). Without it, only commit() commits.
   */
  autoCommit?: boolean;
  /** Default 5,000 ms. */
  autoCommitIntervalMs?: number;
  /** Partitions given to this consumer, each with the offset it reads from. */
  onAssign?: (partitions: TopicPartitionOffset[]) => void;
  /**
   * Partitions taken from this consumer. `lost` false: released to another member (records
   * already buffered are still handed out); true: taken without a commit (the membership
   * expired, or the stream broke and is being reopened).
   */
  onRevoke?: (partitions: TopicPartitionOffset[], lost: boolean) => void;
  /** Records buffered at most (the credit window; default 1,000). */
  creditRecords?: number;
  /** Bytes buffered at most, roughly (default 16 MiB; 0: no byte limit). */
  creditBytes?: number;
  /** How long a broken stream is retried before poll() rejects (default 30,000 ms). */
  reconnectTimeoutMs?: number;
}

interface PendingCommit {
  readonly offsets: CommitOffset[];
  readonly resolve: () => void;
  readonly reject: (error: StaveError) => void;
}

/**
 * A member of a consumer group, reading through one Consume stream: the node joins the
 * group for it, and pushes the records of the partitions the group gives it.
 *
 * ```ts
 * const consumer = new Consumer({ bootstrap: "127.0.0.1:7070", group: "billing", topics: ["orders"] });
 * for await (const record of consumer) console.log(record.offset, record.value.toString());
 * ```
 *
 * Delivery is at least once: the position committed is that of the records the application
 * took (not those only buffered), so after a crash, or a partition moving to another member
 * between two commits, records since the last commit are read again.
 */
export class Consumer extends RecordSource {
  /** The group this consumer belongs to. */
  readonly group: string;
  private readonly connection: Connection;
  private readonly stream: ConsumeStream;
  private readonly options: ConsumerOptions;
  /** Partitions held now, by partitionKey(), each with the offset of the next record to take. */
  private readonly held = new Map<string, TopicPartitionOffset>();
  /** Positions taken and not yet committed, by partitionKey(). */
  private readonly uncommitted = new Map<string, TopicPartitionOffset>();
  private readonly pendingCommits = new Map<number, PendingCommit>();
  private commitId = 0;
  private memberIdValue = "";
  private readonly autoCommitTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: ConsumerOptions) {
    super();
    if (!options.group) throw new TypeError("group: give a consumer group name");
    if (!options.topics || options.topics.length === 0) throw new TypeError("topics: give at least one topic or pattern");
    this.options = options;
    this.group = options.group;
    this.connection = new Connection(options.bootstrap);
    const sink: StreamSink = {
      onRecords: (stream, records) => this.onRecords(stream, records),
      onAssignment: (_stream, assignment) => this.onAssignment(assignment),
      onCommitted: (_stream, committed) => this.onCommitted(committed),
      onBroken: (_stream, error, retrying) => this.onBroken(error, retrying),
    };
    const subscribe = () => ({
      topics: [...options.topics],
      group: options.group,
      auto_commit: false,
      ...(options.fromBeginning ? { earliest: true } : { latest: true }),
    });
    const window = { records: options.creditRecords ?? 1000, bytes: options.creditBytes ?? 16 * 1024 * 1024 };
    this.stream = new ConsumeStream(this.connection, subscribe, window, sink, options.reconnectTimeoutMs ?? 30_000);
    this.stream.start();
    if (options.autoCommit ?? true) {
      this.autoCommitTimer = setInterval(() => {
        this.commit().catch(() => undefined); // the next one retries; close() reports its own
      }, options.autoCommitIntervalMs ?? 5000);
      this.autoCommitTimer.unref();
    }
  }

  /** The member id the group gave this consumer (empty until the first assignment). */
  get memberId(): string {
    return this.memberIdValue;
  }

  /** The partitions this consumer holds now. */
  assignment(): Array<{ topic: string; partition: number }> {
    return [...this.held.values()].map(({ topic, partition }) => ({ topic, partition })).sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  /**
   * Commits the position after the last record the application took, for every partition
   * held that has one not yet committed; resolves once the group's coordinator accepted it.
   * Rejects with a StaveError (e.g. CLOSED, or the server's code).
   */
  commit(): Promise<void> {
    if (this.closed) return Promise.reject(StaveError.closed("consumer"));
    const offsets: CommitOffset[] = [];
    for (const [key, position] of this.uncommitted) {
      if (this.held.has(key)) offsets.push({ topic: position.topic, partition: position.partition, offset: position.offset.toString() });
    }
    this.uncommitted.clear();
    if (offsets.length === 0) return Promise.resolve();
    const id = ++this.commitId;
    return new Promise<void>((resolve, reject) => {
      this.pendingCommits.set(id, { offsets, resolve, reject });
      if (!this.stream.commit({ id, offsets })) {
        this.pendingCommits.delete(id);
        this.restore(offsets);
        reject(this.failure ?? new StaveError("GRPC", "commit: the consume stream is reconnecting", { grpcCode: 14 }));
      }
    });
  }

  /**
   * Commits what was taken (with autoCommit), leaves the group (its partitions go to the
   * other members at once) and closes the connection. Buffered records are dropped; poll()
   * then returns null and iteration ends. Rejects with the final commit's error, if any,
   * after closing.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutdown();
    return this.closing;
  }

  protected onTaken(record: StaveRecord): void {
    const key = partitionKey(record.topic, record.partition);
    const held = this.held.get(key);
    if (!held) return; // a revoked partition's buffered record: not ours to commit
    held.offset = record.offset + 1n;
    const position = this.uncommitted.get(key);
    if (position) position.offset = record.offset + 1n;
    else this.uncommitted.set(key, { topic: record.topic, partition: record.partition, offset: record.offset + 1n });
  }

  private async shutdown(): Promise<void> {
    if (this.autoCommitTimer) clearInterval(this.autoCommitTimer);
    let commitError: StaveError | undefined;
    if ((this.options.autoCommit ?? true) && !this.failure) {
      try {
        await this.commit();
      } catch (error) {
        commitError = error as StaveError;
      }
    }
    this.closed = true;
    this.discardBuffered();
    this.stream.end();
    this.connection.close();
    this.rejectPendingCommits(StaveError.closed("consumer"));
    this.wake();
    if (commitError) throw commitError;
  }

  private onRecords(stream: ConsumeStream, records: ConsumedRecord__Output[]): void {
    if (this.closed) return;
    this.push(stream, records);
  }

  private onAssignment(assignment: Assignment__Output): void {
    this.memberIdValue = assignment.member_id;
    const revoked = assignment.revoked.map(toPosition);
    const lost = assignment.lost.map(toPosition);
    const assigned = assignment.assigned.map(toPosition);
    for (const position of [...revoked, ...lost]) {
      const key = partitionKey(position.topic, position.partition);
      this.held.delete(key);
      this.uncommitted.delete(key);
    }
    for (const position of assigned) {
      this.held.set(partitionKey(position.topic, position.partition), { ...position });
    }
    if (revoked.length > 0) this.callback(() => this.options.onRevoke?.(revoked, false));
    if (lost.length > 0) this.callback(() => this.options.onRevoke?.(lost, true));
    if (assigned.length > 0) this.callback(() => this.options.onAssign?.(assigned));
  }

  private onCommitted(committed: Committed__Output): void {
    const id = Number(committed.id);
    const pending = this.pendingCommits.get(id);
    if (!pending) return;
    this.pendingCommits.delete(id);
    const error = StaveError.fromWire(committed.error, "commit");
    if (error) {
      this.restore(pending.offsets);
      pending.reject(error);
    } else {
      pending.resolve();
    }
  }

  private onBroken(error: StaveError, retrying: boolean): void {
    this.rejectPendingCommits(error);
    // The node left the group for us: whatever we held is gone without a commit.
    const lost = [...this.held.values()];
    this.held.clear();
    this.uncommitted.clear();
    if (lost.length > 0 && !this.closed) this.callback(() => this.options.onRevoke?.(lost, true));
    if (!retrying) {
      this.failure = error;
      this.wake();
    }
  }

  /** Offsets of a commit that failed go back to be committed next time (unless newer ones were taken). */
  private restore(offsets: CommitOffset[]): void {
    for (const offset of offsets) {
      const key = partitionKey(offset.topic!, offset.partition!);
      if (this.held.has(key) && !this.uncommitted.has(key)) {
        this.uncommitted.set(key, { topic: offset.topic!, partition: offset.partition!, offset: BigInt(offset.offset as string) });
      }
    }
  }

  private rejectPendingCommits(error: StaveError): void {
    const pending = [...this.pendingCommits.values()];
    this.pendingCommits.clear();
    for (const commit of pending) commit.reject(error);
  }

  private callback(invoke: () => void): void {
    try {
      invoke();
    } catch (error) {
      process.emitWarning(`stave consumer: an assignment callback threw: ${(error as Error)?.stack ?? error}`);
    }
  }
}

function toPosition(wire: CommitOffset__Output): TopicPartitionOffset {
  return { topic: wire.topic, partition: wire.partition, offset: BigInt(wire.offset) };
}
