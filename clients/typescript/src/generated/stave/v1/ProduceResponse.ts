// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Long } from '@grpc/proto-loader';

export interface ProduceResponse {
  'sequence'?: (number | string | Long);
  'error'?: (_stave_v1_Error | null);
  /**
   * The offset of the batch's first record, and the offset after its last.
   */
  'base_offset'?: (number | string | Long);
  'next_offset'?: (number | string | Long);
  /**
   * The batch was a retry of one already written: the offsets are the first write's.
   */
  'duplicate'?: (boolean);
}

export interface ProduceResponse__Output {
  'sequence': (string);
  'error': (_stave_v1_Error__Output | null);
  /**
   * The offset of the batch's first record, and the offset after its last.
   */
  'base_offset': (string);
  'next_offset': (string);
  /**
   * The batch was a retry of one already written: the offsets are the first write's.
   */
  'duplicate': (boolean);
}
