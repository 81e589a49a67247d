// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface FetchRequest {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  /**
   * At most this many bytes of batches (at least one batch is returned if any is ready).
   * 0 means 1 MiB (1,048,576); values above 16 MiB minus 64 KiB (16,711,680) are clamped to
   * it, so an answer always fits the 16 MiB message limit.
   */
  'max_bytes'?: (number);
  /**
   * Wait until this many bytes are ready, or `max_wait_ms` passed. 0 means 1 (answer as soon
   * as any batch is ready).
   */
  'min_bytes'?: (number);
  /**
   * How long to long-poll for `min_bytes`, in milliseconds. 0: answer at once. Capped at
   * 30,000 (30 s), whatever is asked.
   */
  'max_wait_ms'?: (number);
}

export interface FetchRequest__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
  /**
   * At most this many bytes of batches (at least one batch is returned if any is ready).
   * 0 means 1 MiB (1,048,576); values above 16 MiB minus 64 KiB (16,711,680) are clamped to
   * it, so an answer always fits the 16 MiB message limit.
   */
  'max_bytes': (number);
  /**
   * Wait until this many bytes are ready, or `max_wait_ms` passed. 0 means 1 (answer as soon
   * as any batch is ready).
   */
  'min_bytes': (number);
  /**
   * How long to long-poll for `min_bytes`, in milliseconds. 0: answer at once. Capped at
   * 30,000 (30 s), whatever is asked.
   */
  'max_wait_ms': (number);
}
