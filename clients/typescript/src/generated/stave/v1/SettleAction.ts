// Original file: proto/stave/v1/stave.proto

export const SettleAction = {
  /**
   * Done: never delivered again.
   */
  SETTLE_ACK: 'SETTLE_ACK',
  /**
   * Deliver again (to any member) now, or after `delay_ms`; past `max_deliveries` it goes
   * to the dead-letter topic instead.
   */
  SETTLE_RELEASE: 'SETTLE_RELEASE',
  /**
   * To the dead-letter topic now.
   */
  SETTLE_REJECT: 'SETTLE_REJECT',
  /**
   * Keep the lock another lock period from now.
   */
  SETTLE_EXTEND: 'SETTLE_EXTEND',
} as const;

export type SettleAction =
  /**
   * Done: never delivered again.
   */
  | 'SETTLE_ACK'
  | 0
  /**
   * Deliver again (to any member) now, or after `delay_ms`; past `max_deliveries` it goes
   * to the dead-letter topic instead.
   */
  | 'SETTLE_RELEASE'
  | 1
  /**
   * To the dead-letter topic now.
   */
  | 'SETTLE_REJECT'
  | 2
  /**
   * Keep the lock another lock period from now.
   */
  | 'SETTLE_EXTEND'
  | 3

export type SettleAction__Output = typeof SettleAction[keyof typeof SettleAction]
