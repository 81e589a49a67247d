// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface ProduceRequest {
  /**
   * Correlates answers on ProduceStream; echoed back.
   */
  'sequence'?: (number | string | Long);
  'topic'?: (string);
  'partition'?: (number);
  /**
   * Exactly one unstamped data frame, and nothing else: its length must equal the buffer's
   * (to send many batches, send many requests on ProduceStream). The whole frame is checked
   * before anything is written: body CRC, body header, every record. Anything else (a
   * trailing byte, two frames joined as Fetch returns them, a control frame, a record that
   * does not decode) is answered CORRUPT_BATCH and changes nothing. Larger than the limit
   * (see "Message sizes" above): MESSAGE_TOO_LARGE.
   */
  'batch'?: (Buffer | Uint8Array | string);
}

export interface ProduceRequest__Output {
  /**
   * Correlates answers on ProduceStream; echoed back.
   */
  'sequence': (string);
  'topic': (string);
  'partition': (number);
  /**
   * Exactly one unstamped data frame, and nothing else: its length must equal the buffer's
   * (to send many batches, send many requests on ProduceStream). The whole frame is checked
   * before anything is written: body CRC, body header, every record. Anything else (a
   * trailing byte, two frames joined as Fetch returns them, a control frame, a record that
   * does not decode) is answered CORRUPT_BATCH and changes nothing. Larger than the limit
   * (see "Message sizes" above): MESSAGE_TOO_LARGE.
   */
  'batch': (Buffer);
}
