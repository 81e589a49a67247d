// Original file: proto/stave/v1/stave.proto

import type { Settlement as _stave_v1_Settlement, Settlement__Output as _stave_v1_Settlement__Output } from '../../stave/v1/Settlement';
import type { Long } from '@grpc/proto-loader';

/**
 * A queue member's outcomes for records it holds; answered by Settled (same `id`), once
 * the group's state with them is replicated.
 */
export interface Settle {
  'id'?: (number | string | Long);
  'settlements'?: (_stave_v1_Settlement)[];
}

/**
 * A queue member's outcomes for records it holds; answered by Settled (same `id`), once
 * the group's state with them is replicated.
 */
export interface Settle__Output {
  'id': (string);
  'settlements': (_stave_v1_Settlement__Output)[];
}
