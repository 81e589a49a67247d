// Original file: proto/stave/v1/stave.proto


export interface ListGroupsRequest {
}

export interface ListGroupsRequest__Output {
}
