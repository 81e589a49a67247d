// Original file: proto/stave/v1/stave.proto


export interface InitProducerIdRequest {
}

export interface InitProducerIdRequest__Output {
}
