// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Long } from '@grpc/proto-loader';

export interface ListOffsetsResponse {
  'error'?: (_stave_v1_Error | null);
  'offset'?: (number | string | Long);
}

export interface ListOffsetsResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  'offset': (string);
}
