// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface ListOffsetsRequest {
  'topic'?: (string);
  'partition'?: (number);
  'earliest'?: (boolean);
  'latest'?: (boolean);
  /**
   * The first offset whose record timestamp is at or after this (epoch milliseconds);
   * `latest` if none.
   */
  'timestamp_ms'?: (number | string | Long);
  'spec'?: "earliest"|"latest"|"timestamp_ms";
}

export interface ListOffsetsRequest__Output {
  'topic': (string);
  'partition': (number);
  'earliest'?: (boolean);
  'latest'?: (boolean);
  /**
   * The first offset whose record timestamp is at or after this (epoch milliseconds);
   * `latest` if none.
   */
  'timestamp_ms'?: (string);
  'spec'?: "earliest"|"latest"|"timestamp_ms";
}
