// Original file: proto/stave/v1/stave.proto

import type { ReplicaProblem as _stave_v1_ReplicaProblem, ReplicaProblem__Output as _stave_v1_ReplicaProblem__Output } from '../../stave/v1/ReplicaProblem';
import type { Long } from '@grpc/proto-loader';

export interface PartitionMetadata {
  'partition'?: (number);
  'leader'?: (number | string | Long);
  /**
   * The assigned replicas, in preference order.
   */
  'replicas'?: (number | string | Long)[];
  /**
   * Replicas within reach of the leader's log (voters caught up).
   */
  'in_sync'?: (number | string | Long)[];
  /**
   * Replicas out of service, as their nodes report them (nodes that did not answer are
   * missing).
   */
  'problems'?: (_stave_v1_ReplicaProblem)[];
  /**
   * Set when the leader's message-id table was cut short by the topic's dedupe.max.ids: the
   * ids written in the last this-many milliseconds are recognised (a Publish retried later
   * than that is written again), less than dedupe.window.ms asks. Unset: the whole window
   * (or dedupe off, or no leader).
   */
  'dedupe_window_effective_ms'?: (number | string | Long);
  '_leader'?: "leader";
  '_dedupe_window_effective_ms'?: "dedupe_window_effective_ms";
}

export interface PartitionMetadata__Output {
  'partition': (number);
  'leader'?: (string);
  /**
   * The assigned replicas, in preference order.
   */
  'replicas': (string)[];
  /**
   * Replicas within reach of the leader's log (voters caught up).
   */
  'in_sync': (string)[];
  /**
   * Replicas out of service, as their nodes report them (nodes that did not answer are
   * missing).
   */
  'problems': (_stave_v1_ReplicaProblem__Output)[];
  /**
   * Set when the leader's message-id table was cut short by the topic's dedupe.max.ids: the
   * ids written in the last this-many milliseconds are recognised (a Publish retried later
   * than that is written again), less than dedupe.window.ms asks. Unset: the whole window
   * (or dedupe off, or no leader).
   */
  'dedupe_window_effective_ms'?: (string);
  '_leader'?: "leader";
  '_dedupe_window_effective_ms'?: "dedupe_window_effective_ms";
}
