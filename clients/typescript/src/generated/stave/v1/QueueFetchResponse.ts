// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { ConsumedRecord as _stave_v1_ConsumedRecord, ConsumedRecord__Output as _stave_v1_ConsumedRecord__Output } from '../../stave/v1/ConsumedRecord';

export interface QueueFetchResponse {
  'error'?: (_stave_v1_Error | null);
  'member_id'?: (string);
  'records'?: (_stave_v1_ConsumedRecord)[];
}

export interface QueueFetchResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  'member_id': (string);
  'records': (_stave_v1_ConsumedRecord__Output)[];
}
