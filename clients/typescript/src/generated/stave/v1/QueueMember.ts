// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface QueueMember {
  'member_id'?: (string);
  /**
   * Records it holds now.
   */
  'in_flight'?: (number);
  'delivered'?: (number | string | Long);
  'acked'?: (number | string | Long);
}

export interface QueueMember__Output {
  'member_id': (string);
  /**
   * Records it holds now.
   */
  'in_flight': (number);
  'delivered': (string);
  'acked': (string);
}
