package stave

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"time"
	"unsafe"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// IDHeader is the header that carries a record's message id. The producer gives every record
// without one a UUIDv7, so that a retry is recognised by the node (answered as a duplicate,
// not written twice).
const IDHeader = "id"

// Header is a record header. Keys may repeat; a key must not be empty.
type Header struct {
	// Key names the header (not empty).
	Key string
	// Value is the header's bytes (may be empty).
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
	// Topic the record is published to or was read from.
	Topic string
	// Key routes the record (partition = murmur2(key) % partitions); nil: no key.
	Key []byte
	// Value is the record's payload.
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
	// Topic the record was published to.
	Topic string
	// Partition the record went to.
	Partition uint32
	// Offset of the record in its partition.
	Offset uint64
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

// publishRecords converts records to publish, giving each without an "id" header a new
// UUIDv7; it returns the records and their ids. The callers' records are not modified. The
// proto records and headers are allocated together, a few allocations per call rather than
// several per record.
func publishRecords(records []Record) ([]*pb.PublishRecord, []string) {
	headerCount := 0
	for i := range records {
		headerCount += len(records[i].Headers) + 1
	}
	out := make([]pb.PublishRecord, len(records))
	outPtrs := make([]*pb.PublishRecord, len(records))
	headers := make([]pb.Header, headerCount)
	headerPtrs := make([]*pb.Header, headerCount)
	ids := make([]string, len(records))
	next := 0
	for i := range records {
		r, rec := &records[i], &out[i]
		outPtrs[i] = rec
		rec.Topic, rec.Key, rec.Value = r.Topic, r.Key, r.Value
		if r.Value == nil {
			rec.Value = []byte{}
		}
		if r.ExplicitPartition {
			partition := r.Partition
			rec.Partition = &partition
		}
		if !r.Timestamp.IsZero() {
			ms := r.Timestamp.UnixMilli()
			rec.TimestampMs = &ms
		}
		first := next
		hasID := false
		for _, h := range r.Headers {
			headers[next].Key, headers[next].Value = h.Key, h.Value
			headerPtrs[next] = &headers[next]
			next++
			if !hasID && h.Key == IDHeader {
				ids[i], hasID = string(h.Value), true
			}
		}
		if !hasID {
			id, idBytes := newUUIDv7()
			ids[i] = id
			headers[next].Key, headers[next].Value = IDHeader, idBytes
			headerPtrs[next] = &headers[next]
			next++
		}
		rec.Headers = headerPtrs[first:next:next]
	}
	return outPtrs, ids
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
// bits (math/rand/v2's generator is seeded from the OS and safe for concurrent use). The
// string and the bytes share one allocation, and neither is ever modified.
func newUUIDv7() (string, []byte) {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	binary.BigEndian.PutUint64(b[0:8], ms<<16|rand.Uint64()&0xffff)
	binary.BigEndian.PutUint64(b[8:16], rand.Uint64())
	b[6] = b[6]&0x0f | 0x70 // version 7
	b[8] = b[8]&0x3f | 0x80 // variant 10
	s := new([36]byte)
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return unsafe.String(&s[0], len(s)), s[:]
}
