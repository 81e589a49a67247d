// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { TopicPartitions as _stave_v1_TopicPartitions, TopicPartitions__Output as _stave_v1_TopicPartitions__Output } from '../../stave/v1/TopicPartitions';
import type { Long } from '@grpc/proto-loader';

export interface GroupHeartbeatResponse {
  'error'?: (_stave_v1_Error | null);
  'member_id'?: (string);
  'member_epoch'?: (number | string | Long);
  /**
   * What the member may hold now.
   */
  'assignment'?: (_stave_v1_TopicPartitions)[];
  'heartbeat_interval_ms'?: (number);
  'session_timeout_ms'?: (number);
}

export interface GroupHeartbeatResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  'member_id': (string);
  'member_epoch': (string);
  /**
   * What the member may hold now.
   */
  'assignment': (_stave_v1_TopicPartitions__Output)[];
  'heartbeat_interval_ms': (number);
  'session_timeout_ms': (number);
}
