package stave

import (
	"context"
	"errors"
	"time"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// Start says where a PartitionReader begins in each partition. A position outside a
// partition's records moves to its first record.
type Start struct {
	kind   startKind
	offset uint64
	time   time.Time
}

type startKind int

const (
	startLatest startKind = iota
	startEarliest
	startOffset
	startTime
)

var (
	// Earliest starts at each partition's first record.
	Earliest = Start{kind: startEarliest}
	// Latest starts at each partition's end: only records written from now on.
	Latest = Start{kind: startLatest}
)

// StartOffset starts at this offset in every partition.
func StartOffset(offset uint64) Start { return Start{kind: startOffset, offset: offset} }

// StartTime starts at each partition's first record stamped at or after t.
func StartTime(t time.Time) Start { return Start{kind: startTime, time: t} }

// ReaderConfig tunes a PartitionReader; the zero value is ready to use.
type ReaderConfig struct {
	// CreditRecords is how many records the node may push ahead of Next (default 1,000).
	CreditRecords int
	// CreditBytes is how many bytes of records the node may push ahead of Next (default
	// 16 MiB).
	CreditBytes int
}

// PartitionReader reads chosen partitions of a topic without a group: nothing is committed,
// and nothing is shared with other readers. Next may be called from one goroutine at a time.
// A failed connection ends it (Next returns the error): open a new reader at Position.
type PartitionReader struct {
	session *session
}

// PartitionReader starts reading partitions of topic (nil or empty: all of them) from
// start. An unknown topic or partition is reported by the first Next. config may be
// omitted. ctx bounds only the opening of the stream.
func (c *Client) PartitionReader(ctx context.Context, topic string, partitions []uint32, start Start, config ...ReaderConfig) (*PartitionReader, error) {
	var cfg ReaderConfig
	if len(config) > 1 {
		return nil, errors.New("stave: PartitionReader takes at most one ReaderConfig")
	}
	if len(config) == 1 {
		cfg = config[0]
	}
	subscribe := &pb.Subscribe{Topics: []string{topic}, Partitions: partitions}
	switch start.kind {
	case startEarliest:
		subscribe.Start = &pb.Subscribe_Earliest{Earliest: true}
	case startOffset:
		subscribe.Start = &pb.Subscribe_Offset{Offset: start.offset}
	case startTime:
		subscribe.Start = &pb.Subscribe_TimestampMs{TimestampMs: start.time.UnixMilli()}
	default:
		subscribe.Start = &pb.Subscribe_Latest{Latest: true}
	}
	records, bytes := creditDefaults(cfg.CreditRecords, cfg.CreditBytes)
	s := newSession(c, subscribe, records, bytes, false, assignmentHooks{})
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return &PartitionReader{session: s}, nil
}

// Next returns the next record, waiting for one until ctx ends.
func (r *PartitionReader) Next(ctx context.Context) (*Record, error) {
	return r.session.next(ctx)
}

// Position returns, per partition read, the offset after the last record Next returned.
func (r *PartitionReader) Position() []TopicPartition {
	return r.session.position()
}

// Close stops reading.
func (r *PartitionReader) Close(ctx context.Context) error {
	return r.session.close(ctx)
}
