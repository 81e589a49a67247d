// Original file: proto/stave/v1/stave.proto


export interface FetchOffsetsRequest {
  'group'?: (string);
}

export interface FetchOffsetsRequest__Output {
  'group': (string);
}
