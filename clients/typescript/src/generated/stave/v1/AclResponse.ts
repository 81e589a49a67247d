// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';

export interface AclResponse {
  'error'?: (_stave_v1_Error | null);
}

export interface AclResponse__Output {
  'error': (_stave_v1_Error__Output | null);
}
