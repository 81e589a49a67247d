// Original file: proto/stave/v1/stave.proto

import type { CommitOffset as _stave_v1_CommitOffset, CommitOffset__Output as _stave_v1_CommitOffset__Output } from '../../stave/v1/CommitOffset';
import type { Long } from '@grpc/proto-loader';

/**
 * Commits a group's positions. Empty `offsets`: everything delivered so far (the offset
 * after the last record pushed, per partition). Otherwise these offsets (the offset of the
 * next record to read), each for a partition the stream holds; a partition it does not hold:
 * INVALID_REQUEST, nothing committed. Answered by Committed (with the same `id`).
 */
export interface Commit {
  'offsets'?: (_stave_v1_CommitOffset)[];
  'id'?: (number | string | Long);
}

/**
 * Commits a group's positions. Empty `offsets`: everything delivered so far (the offset
 * after the last record pushed, per partition). Otherwise these offsets (the offset of the
 * next record to read), each for a partition the stream holds; a partition it does not hold:
 * INVALID_REQUEST, nothing committed. Answered by Committed (with the same `id`).
 */
export interface Commit__Output {
  'offsets': (_stave_v1_CommitOffset__Output)[];
  'id': (string);
}
