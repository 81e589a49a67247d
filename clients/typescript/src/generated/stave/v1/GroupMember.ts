// Original file: proto/stave/v1/stave.proto

import type { TopicPartitions as _stave_v1_TopicPartitions, TopicPartitions__Output as _stave_v1_TopicPartitions__Output } from '../../stave/v1/TopicPartitions';
import type { Long } from '@grpc/proto-loader';

export interface GroupMember {
  'member_id'?: (string);
  'member_epoch'?: (number | string | Long);
  /**
   * What it reported holding, and what the assignor wants it to hold.
   */
  'owned'?: (_stave_v1_TopicPartitions)[];
  'target'?: (_stave_v1_TopicPartitions)[];
}

export interface GroupMember__Output {
  'member_id': (string);
  'member_epoch': (string);
  /**
   * What it reported holding, and what the assignor wants it to hold.
   */
  'owned': (_stave_v1_TopicPartitions__Output)[];
  'target': (_stave_v1_TopicPartitions__Output)[];
}
