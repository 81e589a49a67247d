// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

/**
 * A replica whose node took it out of service: its Raft stopped on its own (a storage
 * error) or it could not be opened. The node reopens it from disk a few times, with backoff,
 * then leaves it offline; the partition's other replicas serve it meanwhile.
 */
export interface ReplicaProblem {
  'node_id'?: (number | string | Long);
  /**
   * Why it last failed.
   */
  'reason'?: (string);
  /**
   * Reopens from disk tried so far.
   */
  'reopens'?: (number);
  /**
   * No more reopens: down until its node restarts.
   */
  'offline'?: (boolean);
}

/**
 * A replica whose node took it out of service: its Raft stopped on its own (a storage
 * error) or it could not be opened. The node reopens it from disk a few times, with backoff,
 * then leaves it offline; the partition's other replicas serve it meanwhile.
 */
export interface ReplicaProblem__Output {
  'node_id': (string);
  /**
   * Why it last failed.
   */
  'reason': (string);
  /**
   * Reopens from disk tried so far.
   */
  'reopens': (number);
  /**
   * No more reopens: down until its node restarts.
   */
  'offline': (boolean);
}
