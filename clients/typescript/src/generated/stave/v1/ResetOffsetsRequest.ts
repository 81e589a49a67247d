// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface ResetOffsetsRequest {
  'group'?: (string);
  'topic'?: (string);
  /**
   * Empty: every partition of the topic.
   */
  'partitions'?: (number)[];
  'earliest'?: (boolean);
  'latest'?: (boolean);
  /**
   * Clamped to the partition's records (log start .. high watermark).
   */
  'offset'?: (number | string | Long);
  /**
   * The first record at or after this time (epoch milliseconds); the end when none.
   */
  'timestamp_ms'?: (number | string | Long);
  'to'?: "earliest"|"latest"|"offset"|"timestamp_ms";
}

export interface ResetOffsetsRequest__Output {
  'group': (string);
  'topic': (string);
  /**
   * Empty: every partition of the topic.
   */
  'partitions': (number)[];
  'earliest'?: (boolean);
  'latest'?: (boolean);
  /**
   * Clamped to the partition's records (log start .. high watermark).
   */
  'offset'?: (string);
  /**
   * The first record at or after this time (epoch milliseconds); the end when none.
   */
  'timestamp_ms'?: (string);
  'to'?: "earliest"|"latest"|"offset"|"timestamp_ms";
}
