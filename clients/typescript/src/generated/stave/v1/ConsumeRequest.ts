// Original file: proto/stave/v1/stave.proto

import type { Subscribe as _stave_v1_Subscribe, Subscribe__Output as _stave_v1_Subscribe__Output } from '../../stave/v1/Subscribe';
import type { Credit as _stave_v1_Credit, Credit__Output as _stave_v1_Credit__Output } from '../../stave/v1/Credit';
import type { Commit as _stave_v1_Commit, Commit__Output as _stave_v1_Commit__Output } from '../../stave/v1/Commit';
import type { Settle as _stave_v1_Settle, Settle__Output as _stave_v1_Settle__Output } from '../../stave/v1/Settle';

export interface ConsumeRequest {
  /**
   * The first message, and only the first.
   */
  'subscribe'?: (_stave_v1_Subscribe | null);
  'credit'?: (_stave_v1_Credit | null);
  'commit'?: (_stave_v1_Commit | null);
  /**
   * Queue mode only.
   */
  'settle'?: (_stave_v1_Settle | null);
  'request'?: "subscribe"|"credit"|"commit"|"settle";
}

export interface ConsumeRequest__Output {
  /**
   * The first message, and only the first.
   */
  'subscribe'?: (_stave_v1_Subscribe__Output | null);
  'credit'?: (_stave_v1_Credit__Output | null);
  'commit'?: (_stave_v1_Commit__Output | null);
  /**
   * Queue mode only.
   */
  'settle'?: (_stave_v1_Settle__Output | null);
  'request'?: "subscribe"|"credit"|"commit"|"settle";
}
