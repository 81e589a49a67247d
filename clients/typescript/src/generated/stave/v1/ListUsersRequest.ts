// Original file: proto/stave/v1/stave.proto


export interface ListUsersRequest {
}

export interface ListUsersRequest__Output {
}
