// Original file: proto/stave/v1/stave.proto

import type { ConsumedRecord as _stave_v1_ConsumedRecord, ConsumedRecord__Output as _stave_v1_ConsumedRecord__Output } from '../../stave/v1/ConsumedRecord';

/**
 * Records in offset order per partition; a message stays under 4 MiB (the default receive
 * limit of gRPC libraries), unless one record is larger.
 */
export interface Records {
  'records'?: (_stave_v1_ConsumedRecord)[];
}

/**
 * Records in offset order per partition; a message stays under 4 MiB (the default receive
 * limit of gRPC libraries), unless one record is larger.
 */
export interface Records__Output {
  'records': (_stave_v1_ConsumedRecord__Output)[];
}
