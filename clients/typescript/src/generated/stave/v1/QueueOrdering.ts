// Original file: proto/stave/v1/stave.proto

export const QueueOrdering = {
  /**
   * Records go out in any order.
   */
  QUEUE_ORDERING_NONE: 'QUEUE_ORDERING_NONE',
  /**
   * No two records with the same key are in flight in the group at once, and a key's
   * records are delivered in offset order (records without a key: any order).
   */
  QUEUE_ORDERING_KEY: 'QUEUE_ORDERING_KEY',
} as const;

export type QueueOrdering =
  /**
   * Records go out in any order.
   */
  | 'QUEUE_ORDERING_NONE'
  | 0
  /**
   * No two records with the same key are in flight in the group at once, and a key's
   * records are delivered in offset order (records without a key: any order).
   */
  | 'QUEUE_ORDERING_KEY'
  | 1

export type QueueOrdering__Output = typeof QueueOrdering[keyof typeof QueueOrdering]
