// Original file: proto/stave/v1/stave.proto


export interface DescribeGroupRequest {
  'group'?: (string);
}

export interface DescribeGroupRequest__Output {
  'group': (string);
}
