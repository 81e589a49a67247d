// Original file: proto/stave/v1/stave.proto

import type { CommitOffset as _stave_v1_CommitOffset, CommitOffset__Output as _stave_v1_CommitOffset__Output } from '../../stave/v1/CommitOffset';
import type { Long } from '@grpc/proto-loader';

/**
 * A change of the partitions a group gives the stream. Records of revoked or lost
 * partitions already pushed stay valid; none follows.
 */
export interface Assignment {
  'member_id'?: (string);
  'member_epoch'?: (number | string | Long);
  /**
   * Read from now on, each from `offset`.
   */
  'assigned'?: (_stave_v1_CommitOffset)[];
  /**
   * Released (committed first, with auto_commit).
   */
  'revoked'?: (_stave_v1_CommitOffset)[];
  /**
   * Taken away without a commit (the membership expired or was fenced).
   */
  'lost'?: (_stave_v1_CommitOffset)[];
}

/**
 * A change of the partitions a group gives the stream. Records of revoked or lost
 * partitions already pushed stay valid; none follows.
 */
export interface Assignment__Output {
  'member_id': (string);
  'member_epoch': (string);
  /**
   * Read from now on, each from `offset`.
   */
  'assigned': (_stave_v1_CommitOffset__Output)[];
  /**
   * Released (committed first, with auto_commit).
   */
  'revoked': (_stave_v1_CommitOffset__Output)[];
  /**
   * Taken away without a commit (the membership expired or was fenced).
   */
  'lost': (_stave_v1_CommitOffset__Output)[];
}
