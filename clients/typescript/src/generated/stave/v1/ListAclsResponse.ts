// Original file: proto/stave/v1/stave.proto

import type { AclEntry as _stave_v1_AclEntry, AclEntry__Output as _stave_v1_AclEntry__Output } from '../../stave/v1/AclEntry';

export interface ListAclsResponse {
  'entries'?: (_stave_v1_AclEntry)[];
}

export interface ListAclsResponse__Output {
  'entries': (_stave_v1_AclEntry__Output)[];
}
