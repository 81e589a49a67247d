// Original file: proto/stave/v1/stave.proto

import type { Node as _stave_v1_Node, Node__Output as _stave_v1_Node__Output } from '../../stave/v1/Node';
import type { TopicMetadata as _stave_v1_TopicMetadata, TopicMetadata__Output as _stave_v1_TopicMetadata__Output } from '../../stave/v1/TopicMetadata';
import type { Long } from '@grpc/proto-loader';

export interface MetadataResponse {
  'cluster_id'?: (string);
  'controller_id'?: (number | string | Long);
  'nodes'?: (_stave_v1_Node)[];
  'topics'?: (_stave_v1_TopicMetadata)[];
  '_controller_id'?: "controller_id";
}

export interface MetadataResponse__Output {
  'cluster_id': (string);
  'controller_id'?: (string);
  'nodes': (_stave_v1_Node__Output)[];
  'topics': (_stave_v1_TopicMetadata__Output)[];
  '_controller_id'?: "controller_id";
}
