// Original file: proto/stave/v1/stave.proto

import type { TopicPartitions as _stave_v1_TopicPartitions, TopicPartitions__Output as _stave_v1_TopicPartitions__Output } from '../../stave/v1/TopicPartitions';
import type { Long } from '@grpc/proto-loader';

export interface GroupHeartbeatRequest {
  'group'?: (string);
  /**
   * Empty: join.
   */
  'member_id'?: (string);
  'member_epoch'?: (number | string | Long);
  /**
   * Topic names or patterns (`v1.user.*`, `v1.#`).
   */
  'subscription'?: (string)[];
  /**
   * What the member holds now.
   */
  'owned'?: (_stave_v1_TopicPartitions)[];
  /**
   * Leave the group (its partitions are free at once).
   */
  'leave'?: (boolean);
}

export interface GroupHeartbeatRequest__Output {
  'group': (string);
  /**
   * Empty: join.
   */
  'member_id': (string);
  'member_epoch': (string);
  /**
   * Topic names or patterns (`v1.user.*`, `v1.#`).
   */
  'subscription': (string)[];
  /**
   * What the member holds now.
   */
  'owned': (_stave_v1_TopicPartitions__Output)[];
  /**
   * Leave the group (its partitions are free at once).
   */
  'leave': (boolean);
}
