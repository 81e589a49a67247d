// Original file: proto/stave/v1/stave.proto

import type { Header as _stave_v1_Header, Header__Output as _stave_v1_Header__Output } from '../../stave/v1/Header';
import type { Long } from '@grpc/proto-loader';

/**
 * One record to publish.
 */
export interface PublishRecord {
  /**
   * The topic; it must exist (UNKNOWN_TOPIC), and internal topics (`__...`) are refused
   * (INVALID_REQUEST). Empty: INVALID_TOPIC_NAME.
   */
  'topic'?: (string);
  /**
   * Unset: no key. Set (even empty): the record is routed by the key, as the Kafka and Rust
   * clients do: partition = (murmur2(key) & 0x7fffffff) % partitions.
   */
  'key'?: (Buffer | Uint8Array | string);
  'value'?: (Buffer | Uint8Array | string);
  /**
   * The header `id` is the record's unique message id (the first `id` header, if several);
   * a record without one gets a UUIDv7 from the node that takes it (returned in
   * PublishResult.id). A keyless record is routed by its id, the same way as by a key
   * (never to a "sticky" partition), so a retry reaches the same partition, where the id is
   * recognised (see PublishResult.duplicate): give every record an id of your own if you
   * retry, since a record without one gets a new id on every try and is not protected. A
   * record whose id is being written by another request right now: DUPLICATE_IN_FLIGHT
   * (retry to learn its offset). A Publish whose client gives up (its deadline passes, its
   * connection breaks) is still carried out, so a retry learns the outcome. Ids in frames sent with Produce are not checked (the batch
   * API has idempotent producers instead); a Publish may or may not find them (a new leader
   * rebuilds its table from every record of the window). An empty `id` value, or an empty
   * header key: INVALID_REQUEST.
   */
  'headers'?: (_stave_v1_Header)[];
  /**
   * Set: this partition, routing by key or id skipped (UNKNOWN_PARTITION if the topic has
   * no such partition).
   */
  'partition'?: (number);
  /**
   * Milliseconds since the Unix epoch; unset: when the node takes the record. Negative:
   * INVALID_REQUEST.
   */
  'timestamp_ms'?: (number | string | Long);
  '_key'?: "key";
  '_partition'?: "partition";
  '_timestamp_ms'?: "timestamp_ms";
}

/**
 * One record to publish.
 */
export interface PublishRecord__Output {
  /**
   * The topic; it must exist (UNKNOWN_TOPIC), and internal topics (`__...`) are refused
   * (INVALID_REQUEST). Empty: INVALID_TOPIC_NAME.
   */
  'topic': (string);
  /**
   * Unset: no key. Set (even empty): the record is routed by the key, as the Kafka and Rust
   * clients do: partition = (murmur2(key) & 0x7fffffff) % partitions.
   */
  'key'?: (Buffer);
  'value': (Buffer);
  /**
   * The header `id` is the record's unique message id (the first `id` header, if several);
   * a record without one gets a UUIDv7 from the node that takes it (returned in
   * PublishResult.id). A keyless record is routed by its id, the same way as by a key
   * (never to a "sticky" partition), so a retry reaches the same partition, where the id is
   * recognised (see PublishResult.duplicate): give every record an id of your own if you
   * retry, since a record without one gets a new id on every try and is not protected. A
   * record whose id is being written by another request right now: DUPLICATE_IN_FLIGHT
   * (retry to learn its offset). A Publish whose client gives up (its deadline passes, its
   * connection breaks) is still carried out, so a retry learns the outcome. Ids in frames sent with Produce are not checked (the batch
   * API has idempotent producers instead); a Publish may or may not find them (a new leader
   * rebuilds its table from every record of the window). An empty `id` value, or an empty
   * header key: INVALID_REQUEST.
   */
  'headers': (_stave_v1_Header__Output)[];
  /**
   * Set: this partition, routing by key or id skipped (UNKNOWN_PARTITION if the topic has
   * no such partition).
   */
  'partition'?: (number);
  /**
   * Milliseconds since the Unix epoch; unset: when the node takes the record. Negative:
   * INVALID_REQUEST.
   */
  'timestamp_ms'?: (string);
  '_key'?: "key";
  '_partition'?: "partition";
  '_timestamp_ms'?: "timestamp_ms";
}
