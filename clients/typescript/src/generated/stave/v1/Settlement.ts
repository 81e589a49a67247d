// Original file: proto/stave/v1/stave.proto

import type { SettleAction as _stave_v1_SettleAction, SettleAction__Output as _stave_v1_SettleAction__Output } from '../../stave/v1/SettleAction';
import type { Long } from '@grpc/proto-loader';

/**
 * One record's outcome, naming the delivery: topic, partition, offset and the
 * `delivery_count` it came with.
 */
export interface Settlement {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  'delivery_count'?: (number);
  'action'?: (_stave_v1_SettleAction);
  /**
   * RELEASE: not delivered again before this many milliseconds (at most 1 day; more:
   * INVALID_REQUEST for this settlement alone).
   */
  'delay_ms'?: (number | string | Long);
  /**
   * RELEASE and REJECT: why, for the dead letter's `stave-dlq-reason` (cut to 1 KiB).
   */
  'reason'?: (string);
}

/**
 * One record's outcome, naming the delivery: topic, partition, offset and the
 * `delivery_count` it came with.
 */
export interface Settlement__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
  'delivery_count': (number);
  'action': (_stave_v1_SettleAction__Output);
  /**
   * RELEASE: not delivered again before this many milliseconds (at most 1 day; more:
   * INVALID_REQUEST for this settlement alone).
   */
  'delay_ms': (string);
  /**
   * RELEASE and REJECT: why, for the dead letter's `stave-dlq-reason` (cut to 1 KiB).
   */
  'reason': (string);
}
