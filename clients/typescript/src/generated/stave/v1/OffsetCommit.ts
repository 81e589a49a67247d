// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface OffsetCommit {
  'topic'?: (string);
  'partition'?: (number);
  /**
   * The next offset the group will read.
   */
  'offset'?: (number | string | Long);
  'metadata'?: (string);
}

export interface OffsetCommit__Output {
  'topic': (string);
  'partition': (number);
  /**
   * The next offset the group will read.
   */
  'offset': (string);
  'metadata': (string);
}
