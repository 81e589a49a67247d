// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

/**
 * More room for pushed records. Both add to the stream's balances, which start at zero:
 * records are pushed while the record balance is positive and the byte balance is not used
 * up (the last record may take it past zero: it is sent whole). `bytes = 0`: no byte limit
 * from then on. A record costs its key, value, header keys and values, topic, and 32 bytes.
 * A stream that never sends Credit gets no records (its group membership still follows
 * the group).
 */
export interface Credit {
  'records'?: (number);
  'bytes'?: (number | string | Long);
}

/**
 * More room for pushed records. Both add to the stream's balances, which start at zero:
 * records are pushed while the record balance is positive and the byte balance is not used
 * up (the last record may take it past zero: it is sent whole). `bytes = 0`: no byte limit
 * from then on. A record costs its key, value, header keys and values, topic, and 32 bytes.
 * A stream that never sends Credit gets no records (its group membership still follows
 * the group).
 */
export interface Credit__Output {
  'records': (number);
  'bytes': (string);
}
