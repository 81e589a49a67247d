// Original file: proto/stave/v1/stave.proto


export interface FindCoordinatorRequest {
  'group'?: (string);
}

export interface FindCoordinatorRequest__Output {
  'group': (string);
}
