// Original file: proto/stave/v1/stave.proto

import type { OffsetCommit as _stave_v1_OffsetCommit, OffsetCommit__Output as _stave_v1_OffsetCommit__Output } from '../../stave/v1/OffsetCommit';
import type { Long } from '@grpc/proto-loader';

export interface CommitOffsetsRequest {
  'group'?: (string);
  'offsets'?: (_stave_v1_OffsetCommit)[];
  /**
   * A group member's commit is checked against its epoch (a fenced member's is refused);
   * empty: a commit from outside the group's membership (tools, reset).
   */
  'member_id'?: (string);
  'member_epoch'?: (number | string | Long);
}

export interface CommitOffsetsRequest__Output {
  'group': (string);
  'offsets': (_stave_v1_OffsetCommit__Output)[];
  /**
   * A group member's commit is checked against its epoch (a fenced member's is refused);
   * empty: a commit from outside the group's membership (tools, reset).
   */
  'member_id': (string);
  'member_epoch': (string);
}
