// Original file: proto/stave/v1/stave.proto

import type { PublishResult as _stave_v1_PublishResult, PublishResult__Output as _stave_v1_PublishResult__Output } from '../../stave/v1/PublishResult';
import type { Long } from '@grpc/proto-loader';

export interface PublishResponse {
  /**
   * One per record, in the records' order.
   */
  'results'?: (_stave_v1_PublishResult)[];
  'sequence'?: (number | string | Long);
}

export interface PublishResponse__Output {
  /**
   * One per record, in the records' order.
   */
  'results': (_stave_v1_PublishResult__Output)[];
  'sequence': (string);
}
