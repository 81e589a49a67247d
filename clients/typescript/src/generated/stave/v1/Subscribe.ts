// Original file: proto/stave/v1/stave.proto

import type { ConsumeMode as _stave_v1_ConsumeMode, ConsumeMode__Output as _stave_v1_ConsumeMode__Output } from '../../stave/v1/ConsumeMode';
import type { QueueOptions as _stave_v1_QueueOptions, QueueOptions__Output as _stave_v1_QueueOptions__Output } from '../../stave/v1/QueueOptions';
import type { Long } from '@grpc/proto-loader';

export interface Subscribe {
  /**
   * Topic names, or patterns of dot-separated words (`v1.user.*`: one word; `v1.#`: any
   * number of words; internal topics never match). With a group, topics created later that
   * match join by themselves; without one, patterns are matched once, at subscribe.
   */
  'topics'?: (string)[];
  /**
   * A consumer group: its members share the partitions. Empty: no group, every partition
   * of the topics (or those in `partitions`), read from `start`; nothing is committed.
   */
  'group'?: (string);
  /**
   * Without a group: only these partitions of each topic (empty: all). With a group:
   * INVALID_REQUEST.
   */
  'partitions'?: (number)[];
  /**
   * With a group: commit what was delivered every 5 s and when the stream ends (otherwise
   * only Commit messages commit).
   */
  'auto_commit'?: (boolean);
  'earliest'?: (boolean);
  'latest'?: (boolean);
  'offset'?: (number | string | Long);
  'timestamp_ms'?: (number | string | Long);
  /**
   * GROUP (default): a consumer group, or no group. QUEUE: `group` names a queue group, whose
   * members share every partition record by record: the node hands the next records to
   * whichever member has credit, each locked to it until settled (Settle) or until the lock
   * expires (then redelivered). Pushed records carry `delivery_count` and
   * `lock_deadline_ms`. Credit works as in a group stream (the node adds only what Credit
   * messages grant); a queue client grants one record back per record it settles (ack,
   * release, reject: when answered, whatever the answer; not extend), so its credit is the
   * most records it holds at once. A record whose lock expired unsettled gives no credit
   * back until the client settles it (answered DELIVERY_NOT_HELD) or grants more. `partitions` and `auto_commit`: INVALID_REQUEST. When
   * the stream ends, what it holds unsettled is released at once.
   */
  'mode'?: (_stave_v1_ConsumeMode);
  'queue'?: (_stave_v1_QueueOptions | null);
  /**
   * Where to start: with a group, for partitions the group never committed (default
   * latest: only new records); without one, for every partition (default latest).
   * `offset` and `timestamp_ms` (the first record at or after it) apply to every partition.
   * A position outside a partition's [log start, end] moves to the log start.
   */
  'start'?: "earliest"|"latest"|"offset"|"timestamp_ms";
}

export interface Subscribe__Output {
  /**
   * Topic names, or patterns of dot-separated words (`v1.user.*`: one word; `v1.#`: any
   * number of words; internal topics never match). With a group, topics created later that
   * match join by themselves; without one, patterns are matched once, at subscribe.
   */
  'topics': (string)[];
  /**
   * A consumer group: its members share the partitions. Empty: no group, every partition
   * of the topics (or those in `partitions`), read from `start`; nothing is committed.
   */
  'group': (string);
  /**
   * Without a group: only these partitions of each topic (empty: all). With a group:
   * INVALID_REQUEST.
   */
  'partitions': (number)[];
  /**
   * With a group: commit what was delivered every 5 s and when the stream ends (otherwise
   * only Commit messages commit).
   */
  'auto_commit': (boolean);
  'earliest'?: (boolean);
  'latest'?: (boolean);
  'offset'?: (string);
  'timestamp_ms'?: (string);
  /**
   * GROUP (default): a consumer group, or no group. QUEUE: `group` names a queue group, whose
   * members share every partition record by record: the node hands the next records to
   * whichever member has credit, each locked to it until settled (Settle) or until the lock
   * expires (then redelivered). Pushed records carry `delivery_count` and
   * `lock_deadline_ms`. Credit works as in a group stream (the node adds only what Credit
   * messages grant); a queue client grants one record back per record it settles (ack,
   * release, reject: when answered, whatever the answer; not extend), so its credit is the
   * most records it holds at once. A record whose lock expired unsettled gives no credit
   * back until the client settles it (answered DELIVERY_NOT_HELD) or grants more. `partitions` and `auto_commit`: INVALID_REQUEST. When
   * the stream ends, what it holds unsettled is released at once.
   */
  'mode': (_stave_v1_ConsumeMode__Output);
  'queue': (_stave_v1_QueueOptions__Output | null);
  /**
   * Where to start: with a group, for partitions the group never committed (default
   * latest: only new records); without one, for every partition (default latest).
   * `offset` and `timestamp_ms` (the first record at or after it) apply to every partition.
   * A position outside a partition's [log start, end] moves to the log start.
   */
  'start'?: "earliest"|"latest"|"offset"|"timestamp_ms";
}
