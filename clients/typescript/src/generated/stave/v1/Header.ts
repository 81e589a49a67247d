// Original file: proto/stave/v1/stave.proto


/**
 * A record header. Keys may repeat; a key must not be empty.
 */
export interface Header {
  'key'?: (string);
  'value'?: (Buffer | Uint8Array | string);
}

/**
 * A record header. Keys may repeat; a key must not be empty.
 */
export interface Header__Output {
  'key': (string);
  'value': (Buffer);
}
