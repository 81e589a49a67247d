// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { GroupOffset as _stave_v1_GroupOffset, GroupOffset__Output as _stave_v1_GroupOffset__Output } from '../../stave/v1/GroupOffset';

export interface ResetOffsetsResponse {
  'error'?: (_stave_v1_Error | null);
  /**
   * The offsets committed.
   */
  'offsets'?: (_stave_v1_GroupOffset)[];
}

export interface ResetOffsetsResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  /**
   * The offsets committed.
   */
  'offsets': (_stave_v1_GroupOffset__Output)[];
}
