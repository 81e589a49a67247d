// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Long } from '@grpc/proto-loader';

export interface FetchResponse {
  /**
   * OFFSET_OUT_OF_RANGE still fills `log_start_offset` and `high_watermark`: where a
   * consumer may reset to.
   */
  'error'?: (_stave_v1_Error | null);
  /**
   * Committed data frames, concatenated as stored; the first one may start before `offset`.
   */
  'batches'?: (Buffer | Uint8Array | string);
  'high_watermark'?: (number | string | Long);
  'log_start_offset'?: (number | string | Long);
  /**
   * Where the next fetch continues.
   */
  'next_offset'?: (number | string | Long);
}

export interface FetchResponse__Output {
  /**
   * OFFSET_OUT_OF_RANGE still fills `log_start_offset` and `high_watermark`: where a
   * consumer may reset to.
   */
  'error': (_stave_v1_Error__Output | null);
  /**
   * Committed data frames, concatenated as stored; the first one may start before `offset`.
   */
  'batches': (Buffer);
  'high_watermark': (string);
  'log_start_offset': (string);
  /**
   * Where the next fetch continues.
   */
  'next_offset': (string);
}
