// Original file: proto/stave/v1/stave.proto


export interface CreateUserRequest {
  /**
   * 1 to 512 visible characters, no spaces.
   */
  'name'?: (string);
}

export interface CreateUserRequest__Output {
  /**
   * 1 to 512 visible characters, no spaces.
   */
  'name': (string);
}
