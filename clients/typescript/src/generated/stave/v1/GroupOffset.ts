// Original file: proto/stave/v1/stave.proto

import type { Long } from '@grpc/proto-loader';

export interface GroupOffset {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  'metadata'?: (string);
  'commit_ms'?: (number | string | Long);
}

export interface GroupOffset__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
  'metadata': (string);
  'commit_ms': (string);
}
