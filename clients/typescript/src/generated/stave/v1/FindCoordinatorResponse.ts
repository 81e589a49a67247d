// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Long } from '@grpc/proto-loader';

export interface FindCoordinatorResponse {
  'error'?: (_stave_v1_Error | null);
  'node_id'?: (number | string | Long);
  'addr'?: (string);
}

export interface FindCoordinatorResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  'node_id': (string);
  'addr': (string);
}
