// Original file: proto/stave/v1/stave.proto

import type { QueueOrdering as _stave_v1_QueueOrdering, QueueOrdering__Output as _stave_v1_QueueOrdering__Output } from '../../stave/v1/QueueOrdering';
import type { Long } from '@grpc/proto-loader';

/**
 * A queue group's settings. The member that starts the group (no other member) sets them;
 * a member asking for a different `ordering` while others are in is refused GROUP_MISMATCH;
 * unset fields take the group's (or the defaults).
 */
export interface QueueOptions {
  /**
   * How long a delivery is locked to its member (default 30,000; 1 to 3,600,000; 0 or
   * negative: INVALID_REQUEST).
   */
  'lock_ms'?: (number | string | Long);
  /**
   * Deliveries after which a record that is released or whose lock expires goes to the
   * dead-letter topic `_dlq.{group}.{topic}` instead (default 5; 1 to 1,000).
   */
  'max_deliveries'?: (number);
  'ordering'?: (_stave_v1_QueueOrdering);
  /**
   * How far past the first unacknowledged record of a partition the group delivers
   * (default 100,000 records); at the limit the partition waits for its oldest record.
   */
  'max_unacked_span'?: (number | string | Long);
  '_lock_ms'?: "lock_ms";
  '_max_deliveries'?: "max_deliveries";
  '_max_unacked_span'?: "max_unacked_span";
}

/**
 * A queue group's settings. The member that starts the group (no other member) sets them;
 * a member asking for a different `ordering` while others are in is refused GROUP_MISMATCH;
 * unset fields take the group's (or the defaults).
 */
export interface QueueOptions__Output {
  /**
   * How long a delivery is locked to its member (default 30,000; 1 to 3,600,000; 0 or
   * negative: INVALID_REQUEST).
   */
  'lock_ms'?: (string);
  /**
   * Deliveries after which a record that is released or whose lock expires goes to the
   * dead-letter topic `_dlq.{group}.{topic}` instead (default 5; 1 to 1,000).
   */
  'max_deliveries'?: (number);
  'ordering': (_stave_v1_QueueOrdering__Output);
  /**
   * How far past the first unacknowledged record of a partition the group delivers
   * (default 100,000 records); at the limit the partition waits for its oldest record.
   */
  'max_unacked_span'?: (string);
  '_lock_ms'?: "lock_ms";
  '_max_deliveries'?: "max_deliveries";
  '_max_unacked_span'?: "max_unacked_span";
}
