package stave_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

// sampleRecords are records with keys (one empty, some missing) and headers (binary, empty
// values, a repeated key) to compare byte for byte.
func sampleRecords(topic string, n int) []stave.Record {
	records := make([]stave.Record, n)
	for i := range records {
		r := stave.Record{
			Topic: topic,
			Value: []byte(fmt.Sprintf("value %d \x00\xff", i)),
			Headers: []stave.Header{
				{Key: "index", Value: []byte(fmt.Sprint(i))},
				{Key: "binary", Value: []byte{0, 1, 2, 0xfe, 0xff}},
				{Key: "empty", Value: []byte{}},
				{Key: "index", Value: []byte("again")},
			},
		}
		switch i % 3 {
		case 0:
			r.Key = []byte(fmt.Sprintf("key-%d", i%7))
		case 1:
			r.Key = []byte{} // an empty key is a key
		}
		records[i] = r
	}
	return records
}

// checkSame compares a record read back with the one published (its headers plus the id).
func checkSame(t *testing.T, sent stave.Record, result stave.Result, got *stave.Record) {
	t.Helper()
	where := fmt.Sprintf("record %s (%s/%d@%d)", result.ID, got.Topic, got.Partition, got.Offset)
	if got.Topic != sent.Topic || got.Partition != result.Partition || got.Offset != result.Offset {
		t.Fatalf("%s: published to %s/%d@%d", where, sent.Topic, result.Partition, result.Offset)
	}
	if (sent.Key == nil) != (got.Key == nil) || !bytes.Equal(sent.Key, got.Key) {
		t.Fatalf("%s: key %q (nil %v), sent %q (nil %v)", where, got.Key, got.Key == nil, sent.Key, sent.Key == nil)
	}
	if !bytes.Equal(sent.Value, got.Value) {
		t.Fatalf("%s: value %q, sent %q", where, got.Value, sent.Value)
	}
	want := append(slices.Clone(sent.Headers), stave.Header{Key: "id", Value: []byte(result.ID)})
	if len(got.Headers) != len(want) {
		t.Fatalf("%s: headers %v, sent %v", where, got.Headers, want)
	}
	for i := range want {
		if got.Headers[i].Key != want[i].Key || !bytes.Equal(got.Headers[i].Value, want[i].Value) {
			t.Fatalf("%s: header %d is %q=%q, sent %q=%q", where, i, got.Headers[i].Key, got.Headers[i].Value, want[i].Key, want[i].Value)
		}
	}
	if got.ID() != result.ID {
		t.Fatalf("%s: id %q", where, got.ID())
	}
}

// publishSample publishes sampleRecords: half in one batch, half one by one (async).
func publishSample(t *testing.T, ctx context.Context, producer *stave.Producer, topic string, n int) ([]stave.Record, []stave.Result) {
	t.Helper()
	records := sampleRecords(topic, n)
	results, err := producer.PublishBatch(ctx, records[:n/2])
	if err != nil {
		t.Fatalf("publish batch: %v", err)
	}
	var futures []*stave.Future
	for i := n / 2; i < n; i++ {
		r := records[i]
		opts := []stave.RecordOption{stave.WithHeaders(r.Headers...)}
		if r.Key != nil {
			opts = append(opts, stave.WithKey(r.Key))
		}
		futures = append(futures, producer.PublishAsync(ctx, topic, r.Value, opts...))
	}
	if err := producer.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for _, f := range futures {
		select {
		case <-f.Done():
		default:
			t.Fatalf("a record is not answered after Flush")
		}
		res, err := f.Wait(ctx)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		results = append(results, *res)
	}
	for i, res := range results {
		if res.Duplicate || res.ID == "" || res.Err != nil || res.Topic != topic {
			t.Fatalf("record %d: result %+v", i, res)
		}
	}
	return records, results
}

func TestPublishAndReadBackThroughGroupAndReader(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	topic := newTopic(t, sharedClient, 3)
	producer := sharedClient.Producer(stave.ProducerConfig{})
	defer producer.Close()
	const n = 60
	records, results := publishSample(t, ctx, producer, topic, n)
	byID := map[string]int{}
	for i, res := range results {
		byID[res.ID] = i
	}

	check := func(name string, next func(context.Context) (*stave.Record, error)) {
		seen := map[string]bool{}
		last := map[uint32]uint64{}
		for _, got := range readN(t, ctx, next, n) {
			i, ok := byID[got.ID()]
			if !ok || seen[got.ID()] {
				t.Fatalf("%s: unexpected or repeated record %q", name, got.ID())
			}
			seen[got.ID()] = true
			checkSame(t, records[i], results[i], got)
			if prev, ok := last[got.Partition]; ok && got.Offset <= prev {
				t.Fatalf("%s: partition %d went from offset %d to %d", name, got.Partition, prev, got.Offset)
			}
			last[got.Partition] = got.Offset
		}
		expectNothing(t, next, 200*time.Millisecond)
	}

	consumer, err := sharedClient.Consumer(ctx, stave.ConsumerConfig{
		Group: topic + "-group", Topics: []string{topic}, FromBeginning: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	check("group", consumer.Next)
	if err := consumer.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}

	reader, err := sharedClient.PartitionReader(ctx, topic, nil, stave.Earliest)
	if err != nil {
		t.Fatal(err)
	}
	check("reader", reader.Next)
	if err := reader.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestKeyedRecordsKeepTheirOrder(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	topic := newTopic(t, sharedClient, 4)
	producer := sharedClient.Producer(stave.ProducerConfig{Linger: time.Millisecond, BatchRecords: 7})
	defer producer.Close()
	var futures []*stave.Future
	for i := range 200 {
		futures = append(futures, producer.PublishAsync(ctx, topic, []byte(fmt.Sprint(i)), stave.WithKey([]byte("same"))))
	}
	var partition uint32
	var offset uint64
	for i, f := range futures {
		res, err := f.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && (res.Partition != partition || res.Offset != offset+1) {
			t.Fatalf("record %d at %d@%d after %d@%d", i, res.Partition, res.Offset, partition, offset)
		}
		partition, offset = res.Partition, res.Offset
	}
}

func TestReaderStartsAtOffsetAndTime(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	topic := newTopic(t, sharedClient, 2)
	producer := sharedClient.Producer(stave.ProducerConfig{})
	defer producer.Close()
	base := time.UnixMilli(time.Now().UnixMilli())
	var records []stave.Record
	for i := range 10 {
		records = append(records, stave.Record{
			Topic: topic, Value: []byte{byte(i)}, Partition: 1, ExplicitPartition: true,
			Timestamp: base.Add(time.Duration(i) * time.Second),
		})
	}
	results, err := producer.PublishBatch(ctx, records)
	if err != nil {
		t.Fatal(err)
	}
	for i, res := range results {
		if res.Partition != 1 || res.Offset != uint64(i) {
			t.Fatalf("record %d written at %d@%d", i, res.Partition, res.Offset)
		}
	}

	reader, err := sharedClient.PartitionReader(ctx, topic, []uint32{1}, stave.StartOffset(4))
	if err != nil {
		t.Fatal(err)
	}
	got := readN(t, ctx, reader.Next, 6)
	for i, r := range got {
		if r.Offset != uint64(4+i) || r.Value[0] != byte(4+i) || !r.Timestamp.Equal(records[4+i].Timestamp) {
			t.Fatalf("from offset 4, record %d is offset %d value %v at %s", i, r.Offset, r.Value, r.Timestamp)
		}
	}
	if pos := reader.Position(); len(pos) != 1 || pos[0].Offset != 10 {
		t.Fatalf("position %v", pos)
	}
	reader.Close(ctx)

	reader, err = sharedClient.PartitionReader(ctx, topic, []uint32{1}, stave.StartTime(base.Add(7*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	got = readN(t, ctx, reader.Next, 3)
	if got[0].Offset != 7 {
		t.Fatalf("from the 7th second, the first record is offset %d", got[0].Offset)
	}
	reader.Close(ctx)

	// From latest: the reader's start is set on the node some time after it opens, so new
	// records are written until one arrives.
	reader, err = sharedClient.PartitionReader(ctx, topic, []uint32{1}, stave.Latest)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			if _, err := producer.Publish(ctx, topic, []byte("new"), stave.WithPartition(1)); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	if r := readN(t, ctx, reader.Next, 1)[0]; string(r.Value) != "new" || r.Offset < 10 {
		t.Fatalf("from latest, read offset %d value %q", r.Offset, r.Value)
	}
}
