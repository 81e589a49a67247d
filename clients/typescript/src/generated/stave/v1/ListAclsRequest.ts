// Original file: proto/stave/v1/stave.proto


export interface ListAclsRequest {
  /**
   * Only this principal's entries (and `*`'s); empty: all.
   */
  'principal'?: (string);
}

export interface ListAclsRequest__Output {
  /**
   * Only this principal's entries (and `*`'s); empty: all.
   */
  'principal': (string);
}
