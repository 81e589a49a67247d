// Original file: proto/stave/v1/stave.proto

import type { Subscribe as _stave_v1_Subscribe, Subscribe__Output as _stave_v1_Subscribe__Output } from '../../stave/v1/Subscribe';
import type { Credit as _stave_v1_Credit, Credit__Output as _stave_v1_Credit__Output } from '../../stave/v1/Credit';
import type { Commit as _stave_v1_Commit, Commit__Output as _stave_v1_Commit__Output } from '../../stave/v1/Commit';

export interface ConsumeRequest {
  /**
   * The first message, and only the first.
   */
  'subscribe'?: (_stave_v1_Subscribe | null);
  'credit'?: (_stave_v1_Credit | null);
  'commit'?: (_stave_v1_Commit | null);
  'request'?: "subscribe"|"credit"|"commit";
}

export interface ConsumeRequest__Output {
  /**
   * The first message, and only the first.
   */
  'subscribe'?: (_stave_v1_Subscribe__Output | null);
  'credit'?: (_stave_v1_Credit__Output | null);
  'commit'?: (_stave_v1_Commit__Output | null);
  'request'?: "subscribe"|"credit"|"commit";
}
