package stave

import (
	"encoding/hex"
	"math/rand/v2"
	"time"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// IDHeader is the header that carries a record's message id. The producer gives every record
// without one a UUIDv7, so that a retry is recognised by the node (answered as a duplicate,
// not written twice).
const IDHeader = "id"

// Header is a record header. Keys may repeat; a key must not be empty.
type Header struct {
	Key   string
	Value []byte
}

// Record is a record to publish, or one read back.
//
// To publish, set Topic and Value, and optionally Key, Headers, Timestamp, and Partition
// with ExplicitPartition. Records are routed by key when Key is non-nil (even empty),
// otherwise by their id, unless ExplicitPartition is set.
//
// A record read back has every field set from the log: Partition, Offset and Timestamp say
// where and when it was written; Key is nil when it was published without one; Headers
// include the id.
type Record struct {
	Topic string
	// Key routes the record (partition = murmur2(key) % partitions); nil: no key.
	Key   []byte
	Value []byte
	// Headers, in order; one with key "id" is the record's message id.
	Headers []Header
	// Partition the record was read from, or (with ExplicitPartition) to publish to.
	Partition uint32
	// ExplicitPartition publishes to Partition instead of routing by key or id.
	ExplicitPartition bool
	// Offset of a record read back.
	Offset uint64
	// Timestamp is the record's time (millisecond precision). Zero when publishing: the time
	// the node takes it.
	Timestamp time.Time
}

// ID returns the record's message id (its first "id" header), or "" if it has none.
func (r *Record) ID() string {
	for _, h := range r.Headers {
		if h.Key == IDHeader {
			return string(h.Value)
		}
	}
	return ""
}

// Header returns the value of the record's first header with this key, and whether it has
// one.
func (r *Record) Header(key string) ([]byte, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// Result says where a published record was written.
type Result struct {
	Topic     string
	Partition uint32
	Offset    uint64
	// Duplicate: the record's id had been written before (within the topic's dedupe window),
	// so nothing was written; Partition and Offset are the first write's.
	Duplicate bool
	// ID is the record's message id (its own "id" header, or the one the producer gave it).
	ID string
	// Err is set, in PublishBatch's results only, when this record failed.
	Err error
}

// RecordOption sets an optional part of a record given to Producer.Publish.
type RecordOption func(*Record)

// WithKey routes the record by key (records with the same key go to the same partition).
func WithKey(key []byte) RecordOption {
	return func(r *Record) { r.Key = key }
}

// WithHeader adds a header.
func WithHeader(key string, value []byte) RecordOption {
	return func(r *Record) { r.Headers = append(r.Headers, Header{Key: key, Value: value}) }
}

// WithHeaders adds headers.
func WithHeaders(headers ...Header) RecordOption {
	return func(r *Record) { r.Headers = append(r.Headers, headers...) }
}

// WithID sets the record's message id (by default the producer makes a UUIDv7).
func WithID(id string) RecordOption {
	return WithHeader(IDHeader, []byte(id))
}

// WithPartition publishes to this partition instead of routing by key or id.
func WithPartition(partition uint32) RecordOption {
	return func(r *Record) {
		r.Partition = partition
		r.ExplicitPartition = true
	}
}

// WithTimestamp sets the record's timestamp (by default the time the node takes it).
func WithTimestamp(t time.Time) RecordOption {
	return func(r *Record) { r.Timestamp = t }
}

// toPB converts a record to publish, giving it an id if it has none; it returns the id.
// The caller's Headers slice is not modified.
func (r *Record) toPB() (*pb.PublishRecord, string) {
	out := &pb.PublishRecord{Topic: r.Topic, Key: r.Key, Value: r.Value}
	if r.Value == nil {
		out.Value = []byte{}
	}
	if r.ExplicitPartition {
		partition := r.Partition
		out.Partition = &partition
	}
	if !r.Timestamp.IsZero() {
		ms := r.Timestamp.UnixMilli()
		out.TimestampMs = &ms
	}
	id, hasID := "", false
	headers := make([]pb.Header, len(r.Headers), len(r.Headers)+1)
	out.Headers = make([]*pb.Header, len(r.Headers), len(r.Headers)+1)
	for i, h := range r.Headers {
		headers[i] = pb.Header{Key: h.Key, Value: h.Value}
		out.Headers[i] = &headers[i]
		if !hasID && h.Key == IDHeader {
			id, hasID = string(h.Value), true
		}
	}
	if !hasID {
		id = newUUIDv7()
		out.Headers = append(out.Headers, &pb.Header{Key: IDHeader, Value: []byte(id)})
	}
	return out, id
}

// recordFromPB converts a consumed record.
func recordFromPB(r *pb.ConsumedRecord) *Record {
	rec := &Record{
		Topic:     r.Topic,
		Key:       r.Key,
		Value:     r.Value,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: time.UnixMilli(r.TimestampMs),
	}
	if len(r.Headers) > 0 {
		rec.Headers = make([]Header, len(r.Headers))
		for i, h := range r.Headers {
			rec.Headers[i] = Header{Key: h.Key, Value: h.Value}
		}
	}
	return rec
}

// newUUIDv7 returns a random UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random
// bits (math/rand/v2's generator is seeded from the OS and safe for concurrent use).
func newUUIDv7() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 0; i < 6; i++ {
		b[i] = byte(ms >> (40 - 8*i))
	}
	for i := 6; i < 8; i++ {
		b[i] = byte(hi >> (8 * (i - 6)))
	}
	for i := 8; i < 16; i++ {
		b[i] = byte(lo >> (8 * (i - 8)))
	}
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // variant 10
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}
