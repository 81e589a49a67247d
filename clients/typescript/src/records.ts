import type { ConsumedRecord__Output } from "./generated/stave/v1/ConsumedRecord";
import type { Header as WireHeader } from "./generated/stave/v1/Header";

/** Bytes given to the client: a string is sent as its UTF-8 bytes. */
export type Bytes = string | Uint8Array;

/** A record header as read back. Keys may repeat. */
export interface Header {
  key: string;
  value: Buffer;
}

/**
 * Headers to send: an object (one header per property) or a list of pairs (keys may repeat,
 * order kept). A key must not be empty. The header `id` is the record's message id.
 */
export type HeadersInit =
  | Readonly<Record<string, Bytes>>
  | ReadonlyArray<readonly [string, Bytes]>
  | ReadonlyArray<{ readonly key: string; readonly value: Bytes }>;

/** One record to publish (the batch form's element). */
export interface ProducerRecord {
  topic: string;
  value: Bytes;
  /** Routes the record: partition = murmur2(key) % partitions. Unset: routed by its id. */
  key?: Bytes | null;
  headers?: HeadersInit;
  /** This partition, no routing. */
  partition?: number;
  /** Milliseconds since the Unix epoch; unset: when the node takes the record. */
  timestampMs?: number;
}

/** Where a published record went. */
export interface RecordMetadata {
  topic: string;
  partition: number;
  /** The record's offset in its partition (`bigint`: offsets are unsigned 64-bit). */
  offset: bigint;
  /** The id was written before (a retry): `partition` and `offset` are the first write's. */
  duplicate: boolean;
  /** The record's message id: its `id` header (given by the caller or by the producer). */
  id: string;
}

/** A record read from a partition. */
export interface StaveRecord {
  topic: string;
  partition: number;
  /** `bigint`: offsets are unsigned 64-bit. */
  offset: bigint;
  /** Milliseconds since the Unix epoch, as the producer stamped it. */
  timestampMs: number;
  /** `null`: the record has no key (an empty key is an empty Buffer). */
  key: Buffer | null;
  value: Buffer;
  headers: Header[];
  /** The value of the first `id` header (the message id), if any. */
  id: string | undefined;
}

/** A partition and a position in it (the offset of the next record to read). */
export interface TopicPartitionOffset {
  topic: string;
  partition: number;
  offset: bigint;
}

const EMPTY = Buffer.alloc(0);

export function toBuffer(bytes: Bytes): Buffer {
  if (typeof bytes === "string") return Buffer.from(bytes, "utf8");
  if (Buffer.isBuffer(bytes)) return bytes;
  if (bytes instanceof Uint8Array) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  throw new TypeError("expected a string or a Uint8Array");
}

/** Headers in wire form; the first `id` header's value (as a string) is returned too. */
export function toWireHeaders(headers: HeadersInit | undefined): { wire: WireHeader[]; id: string | undefined } {
  const wire: WireHeader[] = [];
  let id: string | undefined;
  if (!headers) return { wire, id };
  const add = (key: string, value: Bytes) => {
    if (typeof key !== "string") throw new TypeError("a header key must be a string");
    const bytes = toBuffer(value);
    if (id === undefined && key === "id") id = bytes.toString("utf8");
    wire.push({ key, value: bytes });
  };
  if (Array.isArray(headers)) {
    for (const header of headers as ReadonlyArray<readonly [string, Bytes] | { key: string; value: Bytes }>) {
      if (Array.isArray(header)) add(header[0], header[1]);
      else {
        const pair = header as { key: string; value: Bytes };
        add(pair.key, pair.value);
      }
    }
  } else {
    for (const [key, value] of Object.entries(headers as Record<string, Bytes>)) add(key, value);
  }
  return { wire, id };
}

export function fromWireRecord(wire: ConsumedRecord__Output): StaveRecord {
  const headers = wire.headers as Header[];
  let id: string | undefined;
  for (let i = 0; i < headers.length; i++) {
    if (headers[i].key === "id") {
      id = headers[i].value.toString("utf8");
      break;
    }
  }
  return {
    topic: wire.topic,
    partition: wire.partition,
    offset: BigInt(wire.offset),
    timestampMs: Number(wire.timestamp_ms),
    key: wire._key === "key" ? (wire.key ?? EMPTY) : null,
    value: wire.value,
    headers,
    id,
  };
}

/** What a record costs against a byte credit (the proto's Credit rule). */
export function creditCost(record: StaveRecord): number {
  let cost = 32 + record.value.length + (record.key ? record.key.length : 0) + Buffer.byteLength(record.topic);
  for (const header of record.headers) cost += Buffer.byteLength(header.key) + header.value.length;
  return cost;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
