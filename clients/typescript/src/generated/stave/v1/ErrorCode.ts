// Original file: proto/stave/v1/stave.proto

export const ErrorCode = {
  NONE: 'NONE',
  UNKNOWN_TOPIC: 'UNKNOWN_TOPIC',
  UNKNOWN_PARTITION: 'UNKNOWN_PARTITION',
  /**
   * This node does not lead the partition: retry on `Error.leader_addr` (when known).
   */
  NOT_LEADER: 'NOT_LEADER',
  /**
   * No leader yet (an election is under way): retriable.
   */
  LEADER_NOT_AVAILABLE: 'LEADER_NOT_AVAILABLE',
  /**
   * The offset is below the log start (retention removed it) or above the high watermark.
   */
  OFFSET_OUT_OF_RANGE: 'OFFSET_OUT_OF_RANGE',
  INVALID_TOPIC_NAME: 'INVALID_TOPIC_NAME',
  /**
   * Names starting with `__` are reserved for internal topics.
   */
  RESERVED_TOPIC_NAME: 'RESERVED_TOPIC_NAME',
  TOPIC_EXISTS: 'TOPIC_EXISTS',
  MESSAGE_TOO_LARGE: 'MESSAGE_TOO_LARGE',
  /**
   * The batch failed its CRC or does not decode, or the request held more than one frame.
   */
  CORRUPT_BATCH: 'CORRUPT_BATCH',
  INVALID_REQUEST: 'INVALID_REQUEST',
  INVALID_CONFIG: 'INVALID_CONFIG',
  /**
   * An idempotent producer skipped a sequence number.
   */
  OUT_OF_ORDER_SEQUENCE: 'OUT_OF_ORDER_SEQUENCE',
  /**
   * A newer epoch of this producer id exists.
   */
  PRODUCER_FENCED: 'PRODUCER_FENCED',
  /**
   * The same batch (Produce) or message id (Publish) is being written right now: retry to
   * learn its offsets.
   */
  DUPLICATE_IN_FLIGHT: 'DUPLICATE_IN_FLIGHT',
  /**
   * The request did not complete in time (e.g. a leader without a quorum): retriable.
   */
  REQUEST_TIMED_OUT: 'REQUEST_TIMED_OUT',
  /**
   * Fewer nodes than the replication factor asked for.
   */
  NOT_ENOUGH_NODES: 'NOT_ENOUGH_NODES',
  INTERNAL: 'INTERNAL',
  /**
   * This node does not coordinate the group: ask `Error.leader_addr` (or FindCoordinator).
   */
  NOT_COORDINATOR: 'NOT_COORDINATOR',
  /**
   * The group's coordinator is being elected: retriable.
   */
  COORDINATOR_NOT_AVAILABLE: 'COORDINATOR_NOT_AVAILABLE',
  /**
   * The member's epoch is stale (its assignment moved on): heartbeat again.
   */
  FENCED_MEMBER_EPOCH: 'FENCED_MEMBER_EPOCH',
  /**
   * The member is not in the group (it expired, or the coordinator changed): join again.
   */
  UNKNOWN_MEMBER_ID: 'UNKNOWN_MEMBER_ID',
  /**
   * ResetOffsets on a group with members: stop its consumers first.
   */
  GROUP_NOT_EMPTY: 'GROUP_NOT_EMPTY',
  /**
   * The node has no disk space for the write (it keeps a reserve for recovery and admin, so
   * topics can still be deleted and retention lowered). Nothing was written; retriable once
   * space is freed. The message names the node, the path, and the free and reserved bytes.
   */
  STORAGE_FULL: 'STORAGE_FULL',
  /**
   * A queue group settle names a delivery this member does not hold: never delivered to it,
   * settled already, or its lock expired and the record went to another delivery. Nothing
   * changed.
   */
  DELIVERY_NOT_HELD: 'DELIVERY_NOT_HELD',
  /**
   * The group exists with other settings (a consumer group of the same name, another
   * `ordering`, other topics): nothing joined.
   */
  GROUP_MISMATCH: 'GROUP_MISMATCH',
  /**
   * No such user (DeleteUser), or no such ACL entry (RemoveAcl).
   */
  NOT_FOUND: 'NOT_FOUND',
  /**
   * The user exists (CreateUser).
   */
  ALREADY_EXISTS: 'ALREADY_EXISTS',
} as const;

export type ErrorCode =
  | 'NONE'
  | 0
  | 'UNKNOWN_TOPIC'
  | 1
  | 'UNKNOWN_PARTITION'
  | 2
  /**
   * This node does not lead the partition: retry on `Error.leader_addr` (when known).
   */
  | 'NOT_LEADER'
  | 3
  /**
   * No leader yet (an election is under way): retriable.
   */
  | 'LEADER_NOT_AVAILABLE'
  | 4
  /**
   * The offset is below the log start (retention removed it) or above the high watermark.
   */
  | 'OFFSET_OUT_OF_RANGE'
  | 5
  | 'INVALID_TOPIC_NAME'
  | 6
  /**
   * Names starting with `__` are reserved for internal topics.
   */
  | 'RESERVED_TOPIC_NAME'
  | 7
  | 'TOPIC_EXISTS'
  | 8
  | 'MESSAGE_TOO_LARGE'
  | 9
  /**
   * The batch failed its CRC or does not decode, or the request held more than one frame.
   */
  | 'CORRUPT_BATCH'
  | 10
  | 'INVALID_REQUEST'
  | 11
  | 'INVALID_CONFIG'
  | 12
  /**
   * An idempotent producer skipped a sequence number.
   */
  | 'OUT_OF_ORDER_SEQUENCE'
  | 13
  /**
   * A newer epoch of this producer id exists.
   */
  | 'PRODUCER_FENCED'
  | 14
  /**
   * The same batch (Produce) or message id (Publish) is being written right now: retry to
   * learn its offsets.
   */
  | 'DUPLICATE_IN_FLIGHT'
  | 15
  /**
   * The request did not complete in time (e.g. a leader without a quorum): retriable.
   */
  | 'REQUEST_TIMED_OUT'
  | 16
  /**
   * Fewer nodes than the replication factor asked for.
   */
  | 'NOT_ENOUGH_NODES'
  | 17
  | 'INTERNAL'
  | 18
  /**
   * This node does not coordinate the group: ask `Error.leader_addr` (or FindCoordinator).
   */
  | 'NOT_COORDINATOR'
  | 19
  /**
   * The group's coordinator is being elected: retriable.
   */
  | 'COORDINATOR_NOT_AVAILABLE'
  | 20
  /**
   * The member's epoch is stale (its assignment moved on): heartbeat again.
   */
  | 'FENCED_MEMBER_EPOCH'
  | 21
  /**
   * The member is not in the group (it expired, or the coordinator changed): join again.
   */
  | 'UNKNOWN_MEMBER_ID'
  | 22
  /**
   * ResetOffsets on a group with members: stop its consumers first.
   */
  | 'GROUP_NOT_EMPTY'
  | 23
  /**
   * The node has no disk space for the write (it keeps a reserve for recovery and admin, so
   * topics can still be deleted and retention lowered). Nothing was written; retriable once
   * space is freed. The message names the node, the path, and the free and reserved bytes.
   */
  | 'STORAGE_FULL'
  | 24
  /**
   * A queue group settle names a delivery this member does not hold: never delivered to it,
   * settled already, or its lock expired and the record went to another delivery. Nothing
   * changed.
   */
  | 'DELIVERY_NOT_HELD'
  | 25
  /**
   * The group exists with other settings (a consumer group of the same name, another
   * `ordering`, other topics): nothing joined.
   */
  | 'GROUP_MISMATCH'
  | 26
  /**
   * No such user (DeleteUser), or no such ACL entry (RemoveAcl).
   */
  | 'NOT_FOUND'
  | 27
  /**
   * The user exists (CreateUser).
   */
  | 'ALREADY_EXISTS'
  | 28

export type ErrorCode__Output = typeof ErrorCode[keyof typeof ErrorCode]
