// Original file: proto/stave/v1/stave.proto

import type { Header as _stave_v1_Header, Header__Output as _stave_v1_Header__Output } from '../../stave/v1/Header';
import type { Long } from '@grpc/proto-loader';

export interface ConsumedRecord {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  /**
   * Milliseconds since the Unix epoch, as the producer stamped it.
   */
  'timestamp_ms'?: (number | string | Long);
  'key'?: (Buffer | Uint8Array | string);
  'value'?: (Buffer | Uint8Array | string);
  'headers'?: (_stave_v1_Header)[];
  /**
   * Queue groups: how many times this record was delivered, this delivery included (a
   * failover may forget a first delivery), and when its lock expires (epoch milliseconds).
   */
  'delivery_count'?: (number);
  'lock_deadline_ms'?: (number | string | Long);
  '_key'?: "key";
}

export interface ConsumedRecord__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
  /**
   * Milliseconds since the Unix epoch, as the producer stamped it.
   */
  'timestamp_ms': (string);
  'key'?: (Buffer);
  'value': (Buffer);
  'headers': (_stave_v1_Header__Output)[];
  /**
   * Queue groups: how many times this record was delivered, this delivery included (a
   * failover may forget a first delivery), and when its lock expires (epoch milliseconds).
   */
  'delivery_count': (number);
  'lock_deadline_ms': (string);
  '_key'?: "key";
}
