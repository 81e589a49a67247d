// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface QueuePartitionState {
  'topic'?: (string);
  'partition'?: (number);
  /**
   * The first record not acknowledged: everything below is done.
   */
  'ack_floor'?: (number | string | Long);
  'high_watermark'?: (number | string | Long);
  'in_flight'?: (number);
  /**
   * Records released with a delay, waiting for it.
   */
  'delayed'?: (number);
  /**
   * Deliveries after the first, and records sent to the dead-letter topic, since the
   * coordinator took the group (redeliveries) and ever (dead_lettered).
   */
  'redeliveries'?: (number | string | Long);
  'dead_lettered'?: (number | string | Long);
  /**
   * Age of the oldest record not acknowledged (0: none).
   */
  'oldest_unacked_age_s'?: (number | string);
  /**
   * Why the partition delivers nothing more now (empty: it does): `max.unacked.span` or
   * the in-flight cap reached.
   */
  'blocked'?: (string);
}

export interface QueuePartitionState__Output {
  'topic': (string);
  'partition': (number);
  /**
   * The first record not acknowledged: everything below is done.
   */
  'ack_floor': (string);
  'high_watermark': (string);
  'in_flight': (number);
  /**
   * Records released with a delay, waiting for it.
   */
  'delayed': (number);
  /**
   * Deliveries after the first, and records sent to the dead-letter topic, since the
   * coordinator took the group (redeliveries) and ever (dead_lettered).
   */
  'redeliveries': (string);
  'dead_lettered': (string);
  /**
   * Age of the oldest record not acknowledged (0: none).
   */
  'oldest_unacked_age_s': (number);
  /**
   * Why the partition delivers nothing more now (empty: it does): `max.unacked.span` or
   * the in-flight cap reached.
   */
  'blocked': (string);
}
