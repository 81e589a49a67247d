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
  '_key'?: "key";
}
