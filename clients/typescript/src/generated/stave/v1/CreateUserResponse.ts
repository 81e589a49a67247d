// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';

export interface CreateUserResponse {
  'error'?: (_stave_v1_Error | null);
  /**
   * Give it to the user's clients (`--token-file`); it is not shown again.
   */
  'token'?: (string);
}

export interface CreateUserResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  /**
   * Give it to the user's clients (`--token-file`); it is not shown again.
   */
  'token': (string);
}
