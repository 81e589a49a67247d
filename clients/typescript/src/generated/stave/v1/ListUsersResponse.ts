// Original file: proto/stave/v1/stave.proto


export interface ListUsersResponse {
  'names'?: (string)[];
}

export interface ListUsersResponse__Output {
  'names': (string)[];
}
