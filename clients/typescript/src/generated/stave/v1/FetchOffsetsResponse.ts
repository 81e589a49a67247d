// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { GroupOffset as _stave_v1_GroupOffset, GroupOffset__Output as _stave_v1_GroupOffset__Output } from '../../stave/v1/GroupOffset';

export interface FetchOffsetsResponse {
  'error'?: (_stave_v1_Error | null);
  'offsets'?: (_stave_v1_GroupOffset)[];
}

export interface FetchOffsetsResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  'offsets': (_stave_v1_GroupOffset__Output)[];
}
