// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Long } from '@grpc/proto-loader';

export interface InitProducerIdResponse {
  'error'?: (_stave_v1_Error | null);
  'producer_id'?: (number | string | Long);
  'producer_epoch'?: (number);
}

export interface InitProducerIdResponse__Output {
  'error': (_stave_v1_Error__Output | null);
  'producer_id': (string);
  'producer_epoch': (number);
}
