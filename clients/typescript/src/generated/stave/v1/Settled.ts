// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Long } from '@grpc/proto-loader';

/**
 * Per settlement, in order; unset or NONE: done. (A Settle on a stream that is not in queue
 * mode is answered with one INVALID_REQUEST.)
 */
export interface Settled {
  'id'?: (number | string | Long);
  'results'?: (_stave_v1_Error)[];
}

/**
 * Per settlement, in order; unset or NONE: done. (A Settle on a stream that is not in queue
 * mode is answered with one INVALID_REQUEST.)
 */
export interface Settled__Output {
  'id': (string);
  'results': (_stave_v1_Error__Output)[];
}
