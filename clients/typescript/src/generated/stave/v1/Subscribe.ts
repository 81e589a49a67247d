// Original file: proto/stave/v1/stave.proto

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
   * Where to start: with a group, for partitions the group never committed (default
   * latest: only new records); without one, for every partition (default latest).
   * `offset` and `timestamp_ms` (the first record at or after it) apply to every partition.
   * A position outside a partition's [log start, end] moves to the log start.
   */
  'start'?: "earliest"|"latest"|"offset"|"timestamp_ms";
}
