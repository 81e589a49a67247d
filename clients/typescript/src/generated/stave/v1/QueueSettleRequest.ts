// Original file: proto/stave/v1/stave.proto

import type { Settlement as _stave_v1_Settlement, Settlement__Output as _stave_v1_Settlement__Output } from '../../stave/v1/Settlement';

export interface QueueSettleRequest {
  'group'?: (string);
  'member_id'?: (string);
  'settlements'?: (_stave_v1_Settlement)[];
}

export interface QueueSettleRequest__Output {
  'group': (string);
  'member_id': (string);
  'settlements': (_stave_v1_Settlement__Output)[];
}
