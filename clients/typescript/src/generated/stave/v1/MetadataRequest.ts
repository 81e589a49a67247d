// Original file: proto/stave/v1/stave.proto


export interface MetadataRequest {
  /**
   * Empty: every topic (internal ones excluded).
   */
  'topics'?: (string)[];
}

export interface MetadataRequest__Output {
  /**
   * Empty: every topic (internal ones excluded).
   */
  'topics': (string)[];
}
