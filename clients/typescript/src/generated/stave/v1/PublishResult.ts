// Original file: proto/stave/v1/stave.proto

import type { Error as _stave_v1_Error, Error__Output as _stave_v1_Error__Output } from '../../stave/v1/Error';
import type { Long } from '@grpc/proto-loader';

/**
 * The outcome of one record.
 */
export interface PublishResult {
  /**
   * Unset or NONE: written (or a duplicate, see below). Otherwise nothing of this record
   * was written (except on REQUEST_TIMED_OUT, where it may have been: retry with the same
   * id, and the answer says). Records of one
   * request fail or succeed each on their own; the records that share a partition and a
   * batch share its outcome.
   */
  'error'?: (_stave_v1_Error | null);
  /**
   * Where the record went (also on most errors, once it was routed).
   */
  'partition'?: (number);
  'offset'?: (number | string | Long);
  /**
   * The record's id was written before, within the topic's `dedupe.window.ms` (default 2
   * minutes; `0` turns this off), or earlier in this request: nothing was written, and
   * `partition` and `offset` are the first write's. The partition's leader keeps the ids of
   * the window (at most `dedupe.max.ids`, default 1,000,000, per partition; the oldest go
   * first), and a new leader rebuilds them from its log before it takes a Publish, so a
   * retry after a timeout, a broken connection or a failover is written once.
   */
  'duplicate'?: (boolean);
  /**
   * The record's message id: its `id` header, or the one the node gave it.
   */
  'id'?: (string);
}

/**
 * The outcome of one record.
 */
export interface PublishResult__Output {
  /**
   * Unset or NONE: written (or a duplicate, see below). Otherwise nothing of this record
   * was written (except on REQUEST_TIMED_OUT, where it may have been: retry with the same
   * id, and the answer says). Records of one
   * request fail or succeed each on their own; the records that share a partition and a
   * batch share its outcome.
   */
  'error': (_stave_v1_Error__Output | null);
  /**
   * Where the record went (also on most errors, once it was routed).
   */
  'partition': (number);
  'offset': (string);
  /**
   * The record's id was written before, within the topic's `dedupe.window.ms` (default 2
   * minutes; `0` turns this off), or earlier in this request: nothing was written, and
   * `partition` and `offset` are the first write's. The partition's leader keeps the ids of
   * the window (at most `dedupe.max.ids`, default 1,000,000, per partition; the oldest go
   * first), and a new leader rebuilds them from its log before it takes a Publish, so a
   * retry after a timeout, a broken connection or a failover is written once.
   */
  'duplicate': (boolean);
  /**
   * The record's message id: its `id` header, or the one the node gave it.
   */
  'id': (string);
}
