import { ConsumeStream, type StreamSink } from "./consume-stream";
import { Connection, type Bootstrap } from "./connection";
import { StaveError } from "./errors";
import type { MetadataResponse__Output } from "./generated/stave/v1/MetadataResponse";
import type { Subscribe } from "./generated/stave/v1/Subscribe";
import type { StaveRecord } from "./records";
import { RecordSource } from "./source";

/** Options of {@link PartitionReader}. Give at most one of `offset` and `timestampMs`. */
export interface PartitionReaderOptions {
  bootstrap: Bootstrap;
  topic: string;
  /** The partitions to read (default: every partition of the topic). */
  partitions?: readonly number[];
  /**
   * Where to start in every partition: an offset, `"earliest"` (the default) or
   * `"latest"` (only records written from now on). A position outside a partition's records
   * moves to its log start.
   */
  offset?: bigint | number | "earliest" | "latest";
  /** Start at the first record stamped at or after this time (milliseconds since the Unix epoch). */
  timestampMs?: number;
  /** Records buffered at most per partition (default 1,000). */
  creditRecords?: number;
  /** Bytes buffered at most per partition, roughly (default 4 MiB; 0: no byte limit). */
  creditBytes?: number;
  /** How long a broken stream is retried before poll() rejects (default 30,000 ms). */
  reconnectTimeoutMs?: number;
  /** How long finding the topic's partitions may take (default 10,000 ms). */
  requestTimeoutMs?: number;
}

/**
 * Reads partitions of a topic from an offset or a time, without a group (nothing is
 * committed). One Consume stream per partition, so a stream that breaks is reopened at the
 * offset after the last record it delivered.
 *
 * ```ts
 * const reader = new PartitionReader({ bootstrap: "127.0.0.1:7070", topic: "orders", partitions: [0], offset: 42n });
 * const record = await reader.poll(1000);
 * await reader.close();
 * ```
 */
export class PartitionReader extends RecordSource {
  readonly topic: string;
  private readonly connection: Connection;
  private readonly streams: ConsumeStream[] = [];
  /** The offset after the last record pushed, per partition (where a new stream resumes). */
  private readonly received = new Map<number, bigint>();

  constructor(private readonly options: PartitionReaderOptions) {
    super();
    if (typeof options.topic !== "string") throw new TypeError("topic must be a string");
    if (options.offset !== undefined && options.timestampMs !== undefined) throw new TypeError("give offset or timestampMs, not both");
    this.topic = options.topic;
    this.connection = new Connection(options.bootstrap);
    this.start().catch((error: unknown) => {
      this.failure = StaveError.fromGrpc(error, "partition reader");
      this.wake();
    });
  }

  /** Stops reading and closes the connection; poll() then returns null and iteration ends. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.discardBuffered();
    for (const stream of this.streams) stream.cancel();
    this.connection.close();
    this.wake();
  }

  protected onTaken(_record: StaveRecord): void {}

  private async start(): Promise<void> {
    const partitions = this.options.partitions ? [...this.options.partitions] : await this.allPartitions();
    if (this.closed) return;
    const sink: StreamSink = {
      onRecords: (stream, records) => {
        if (this.closed || records.length === 0) return;
        const last = records[records.length - 1];
        this.received.set(last.partition, BigInt(last.offset) + 1n);
        this.push(stream, records);
      },
      onAssignment: () => undefined,
      onCommitted: () => undefined,
      onBroken: (_stream, error, retrying) => {
        if (retrying || this.closed) return;
        this.failure ??= error;
        for (const stream of this.streams) stream.cancel();
        this.wake();
      },
    };
    const window = { records: this.options.creditRecords ?? 1000, bytes: this.options.creditBytes ?? 4 * 1024 * 1024 };
    for (const partition of partitions) {
      const stream = new ConsumeStream(this.connection, () => this.subscribe(partition), window, sink, this.options.reconnectTimeoutMs ?? 30_000);
      this.streams.push(stream);
      stream.start();
    }
  }

  private subscribe(partition: number): Subscribe {
    const base = { topics: [this.topic], partitions: [partition] };
    const resume = this.received.get(partition);
    if (resume !== undefined) return { ...base, offset: resume.toString() };
    const { offset, timestampMs } = this.options;
    if (timestampMs !== undefined) return { ...base, timestamp_ms: timestampMs };
    if (offset === "latest") return { ...base, latest: true };
    if (offset === undefined || offset === "earliest") return { ...base, earliest: true };
    return { ...base, offset: offset.toString() };
  }

  private async allPartitions(): Promise<number[]> {
    const response = await this.connection.unary<MetadataResponse__Output>(
      "metadata", this.options.requestTimeoutMs ?? 10_000,
      (client, options, done) => client.Metadata({ topics: [this.topic] }, options, done),
    );
    const topic = response.topics.find((candidate) => candidate.name === this.topic);
    const error = StaveError.fromWire(topic?.error, `topic ${this.topic}`);
    if (error) throw error;
    if (!topic) throw new StaveError("UNKNOWN_TOPIC", `topic ${this.topic}: not in the cluster's metadata`);
    return topic.partitions.map((partition) => partition.partition).sort((a, b) => a - b);
  }
}
