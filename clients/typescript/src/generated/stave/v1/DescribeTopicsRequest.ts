// Original file: proto/stave/v1/stave.proto


export interface DescribeTopicsRequest {
  /**
   * Empty: every topic (internal ones excluded).
   */
  'names'?: (string)[];
}

export interface DescribeTopicsRequest__Output {
  /**
   * Empty: every topic (internal ones excluded).
   */
  'names': (string)[];
}
