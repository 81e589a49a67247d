// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface ListedGroup {
  'group'?: (string);
  /**
   * The node coordinating it.
   */
  'coordinator'?: (number | string | Long);
  'members'?: (number);
}

export interface ListedGroup__Output {
  'group': (string);
  /**
   * The node coordinating it.
   */
  'coordinator': (string);
  'members': (number);
}
