// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Long } from '@grpc/proto-loader';

export interface Committed {
  'id'?: (number | string | Long);
  /**
   * Unset or NONE: committed.
   */
  'error'?: (_stave_v1_Error | null);
}

export interface Committed__Output {
  'id': (string);
  /**
   * Unset or NONE: committed.
   */
  'error': (_stave_v1_Error__Output | null);
}
