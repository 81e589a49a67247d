// Original file: proto/stave/v1/stave.proto

import type { AclEntry as _stave_v1_AclEntry, AclEntry__Output as _stave_v1_AclEntry__Output } from '../../stave/v1/AclEntry';

export interface AclRequest {
  'entry'?: (_stave_v1_AclEntry | null);
}

export interface AclRequest__Output {
  'entry': (_stave_v1_AclEntry__Output | null);
}
