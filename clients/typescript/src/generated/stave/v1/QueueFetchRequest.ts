// Original file: proto/stave/v1/stave.proto

import type { QueueOptions as _stave_v1_QueueOptions, QueueOptions__Output as _stave_v1_QueueOptions__Output } from '../../stave/v1/QueueOptions';
import type { Long } from '@grpc/proto-loader';

export interface QueueFetchRequest {
  /**
   * 1 to 100 characters from A-Z a-z 0-9 . _ - (it names the group's dead-letter topics,
   * `_dlq.{group}.{topic}`; a name longer than a topic name may be is cut and ends with a
   * hash of the topic's name).
   */
  'group'?: (string);
  /**
   * Empty: join (the answer carries the new id).
   */
  'member_id'?: (string);
  /**
   * Topic names or patterns (joining only; later fetches may leave it empty).
   */
  'topics'?: (string)[];
  'options'?: (_stave_v1_QueueOptions | null);
  'earliest'?: (boolean);
  'latest'?: (boolean);
  'offset'?: (number | string | Long);
  'timestamp_ms'?: (number | string | Long);
  /**
   * Up to this many records (0: none, a heartbeat; at most 10,000).
   */
  'max_records'?: (number);
  /**
   * Wait up to this long for the first (at most 30,000).
   */
  'max_wait_ms'?: (number);
  /**
   * Leave the group: what the member holds is released now.
   */
  'leave'?: (boolean);
  /**
   * Where a new group starts reading partitions it never acknowledged (default latest).
   */
  'start'?: "earliest"|"latest"|"offset"|"timestamp_ms";
}

export interface QueueFetchRequest__Output {
  /**
   * 1 to 100 characters from A-Z a-z 0-9 . _ - (it names the group's dead-letter topics,
   * `_dlq.{group}.{topic}`; a name longer than a topic name may be is cut and ends with a
   * hash of the topic's name).
   */
  'group': (string);
  /**
   * Empty: join (the answer carries the new id).
   */
  'member_id': (string);
  /**
   * Topic names or patterns (joining only; later fetches may leave it empty).
   */
  'topics': (string)[];
  'options': (_stave_v1_QueueOptions__Output | null);
  'earliest'?: (boolean);
  'latest'?: (boolean);
  'offset'?: (string);
  'timestamp_ms'?: (string);
  /**
   * Up to this many records (0: none, a heartbeat; at most 10,000).
   */
  'max_records': (number);
  /**
   * Wait up to this long for the first (at most 30,000).
   */
  'max_wait_ms': (number);
  /**
   * Leave the group: what the member holds is released now.
   */
  'leave': (boolean);
  /**
   * Where a new group starts reading partitions it never acknowledged (default latest).
   */
  'start'?: "earliest"|"latest"|"offset"|"timestamp_ms";
}
