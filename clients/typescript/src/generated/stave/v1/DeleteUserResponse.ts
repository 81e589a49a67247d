// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';

export interface DeleteUserResponse {
  'error'?: (_stave_v1_Error | null);
}

export interface DeleteUserResponse__Output {
  'error': (_stave_v1_Error__Output | null);
}
