// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';

export interface QueueSettleResponse {
  /**
   * Set: nothing was settled (unknown member, not the coordinator, ...).
   */
  'error'?: (_stave_v1_Error | null);
  /**
   * Per settlement, in order.
   */
  'results'?: (_stave_v1_Error)[];
}

export interface QueueSettleResponse__Output {
  /**
   * Set: nothing was settled (unknown member, not the coordinator, ...).
   */
  'error': (_stave_v1_Error__Output | null);
  /**
   * Per settlement, in order.
   */
  'results': (_stave_v1_Error__Output)[];
}
