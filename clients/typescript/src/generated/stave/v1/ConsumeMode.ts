// Original file: proto/stave/v1/stave.proto

export const ConsumeMode = {
  CONSUME_MODE_GROUP: 'CONSUME_MODE_GROUP',
  CONSUME_MODE_QUEUE: 'CONSUME_MODE_QUEUE',
} as const;

export type ConsumeMode =
  | 'CONSUME_MODE_GROUP'
  | 0
  | 'CONSUME_MODE_QUEUE'
  | 1

export type ConsumeMode__Output = typeof ConsumeMode[keyof typeof ConsumeMode]
