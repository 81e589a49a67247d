// Original file: proto/stave/v1/stave.proto


export interface DeleteUserRequest {
  'name'?: (string);
}

export interface DeleteUserRequest__Output {
  'name': (string);
}
