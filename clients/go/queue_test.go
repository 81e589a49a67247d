package stave_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

// queueWait bounds each wait for the node in the queue tests.
const queueWait = 20 * time.Second

func joinQueue(t *testing.T, ctx context.Context, group, topic string, credit int) *stave.QueueConsumer {
	t.Helper()
	q, err := sharedClient.QueueConsumer(ctx, stave.QueueConsumerConfig{
		Group: group, Topics: []string{topic}, FromBeginning: true, Credit: credit,
	})
	if err != nil {
		t.Fatalf("join queue group %s: %v", group, err)
	}
	t.Cleanup(func() { q.Close(context.Background()) })
	return q
}

// takeQueue reads n records, failing the test on an error or after queueWait.
func takeQueue(t *testing.T, q *stave.QueueConsumer, n int) []*stave.QueueRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queueWait)
	defer cancel()
	out := make([]*stave.QueueRecord, 0, n)
	for len(out) < n {
		r, err := q.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, r)
	}
	return out
}

// expectNoQueueRecord checks that q has no record within wait.
func expectNoQueueRecord(t *testing.T, q *stave.QueueConsumer, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if r, err := q.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expected no record, got %v (error %v)", r, err)
	}
}

func publishValues(t *testing.T, ctx context.Context, topic string, values ...string) []stave.Result {
	t.Helper()
	producer := sharedClient.Producer(stave.ProducerConfig{})
	defer producer.Close()
	records := make([]stave.Record, len(values))
	for i, v := range values {
		records[i] = stave.Record{Topic: topic, Value: []byte(v)}
	}
	results, err := producer.PublishBatch(ctx, records)
	if err != nil {
		t.Fatal(err)
	}
	return results
}

type ack struct {
	member string
	offset uint64
	err    error
}

// ackAll reads records from q and acks each, reporting every ack on out, until q closes.
func ackAll(q *stave.QueueConsumer, member string, out chan<- ack) {
	for {
		r, err := q.Next(context.Background())
		if err != nil {
			return
		}
		if r.DeliveryCount != 1 {
			out <- ack{member, r.Offset, fmt.Errorf("delivery %d of offset %d", r.DeliveryCount, r.Offset)}
			continue
		}
		out <- ack{member, r.Offset, q.Ack(context.Background(), r)}
	}
}

// Two members of one queue group on a 1-partition topic: each holds at most its credit, so
// both get records; every record is acked once, by one member, and together they ack all.
func TestQueueMembersShareAPartitionRecordByRecord(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	topic := newTopic(t, sharedClient, 1)
	group := topic + "-queue"
	const total = 40
	values := make([]string, total)
	for i := range values {
		values[i] = fmt.Sprintf("job-%d", i)
	}
	publishValues(t, ctx, topic, values...)

	// a holds its 5 unsettled: whatever b gets, a could not have.
	a := joinQueue(t, ctx, group, topic, 5)
	firstA := takeQueue(t, a, 5)
	b := joinQueue(t, ctx, group, topic, 5)
	firstB := takeQueue(t, b, 5)

	acks := make(chan ack, total*2)
	for _, r := range firstA {
		f := a.AckAsync(r)
		go func() { acks <- ack{"a", r.Offset, f.Wait(ctx)} }()
	}
	for _, r := range firstB {
		f := b.AckAsync(r)
		go func() { acks <- ack{"b", r.Offset, f.Wait(ctx)} }()
	}
	go ackAll(a, "a", acks)
	go ackAll(b, "b", acks)

	byMember := map[string]int{}
	var offsets []uint64
	for len(offsets) < total {
		select {
		case got := <-acks:
			if got.err != nil {
				t.Fatalf("member %s, offset %d: %v", got.member, got.offset, got.err)
			}
			byMember[got.member]++
			offsets = append(offsets, got.offset)
		case <-ctx.Done():
			t.Fatalf("%d of %d records acked (%v)", len(offsets), total, byMember)
		}
	}
	if byMember["a"] == 0 || byMember["b"] == 0 {
		t.Fatalf("records acked per member: %v", byMember)
	}
	slices.Sort(offsets)
	for i, offset := range offsets {
		if offset != uint64(i) {
			t.Fatalf("acked offsets %v: not each of 0..%d once", offsets, total-1)
		}
	}
	select {
	case extra := <-acks:
		t.Fatalf("a record after all were acked: %+v", extra)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestQueueReleasedRecordComesBackWithDeliveryCountTwo(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	topic := newTopic(t, sharedClient, 1)
	publishValues(t, ctx, topic, "retry me")
	q := joinQueue(t, ctx, topic+"-queue", topic, 1)

	first := takeQueue(t, q, 1)[0]
	if first.Offset != 0 || first.DeliveryCount != 1 || string(first.Value) != "retry me" {
		t.Fatalf("first delivery: offset %d, count %d, value %q", first.Offset, first.DeliveryCount, first.Value)
	}
	if time.Until(first.LockDeadline) <= 0 {
		t.Fatalf("lock deadline %v is not ahead", first.LockDeadline)
	}
	if err := q.Release(ctx, first, stave.WithReason("not yet")); err != nil {
		t.Fatalf("release: %v", err)
	}
	again := takeQueue(t, q, 1)[0]
	if again.Offset != 0 || again.DeliveryCount != 2 || string(again.Value) != "retry me" {
		t.Fatalf("second delivery: offset %d, count %d, value %q", again.Offset, again.DeliveryCount, again.Value)
	}
	if err := q.Ack(ctx, again); err != nil {
		t.Fatalf("ack: %v", err)
	}
	expectNoQueueRecord(t, q, 300*time.Millisecond)
}

func TestQueueRejectedRecordGoesToTheDeadLetterTopic(t *testing.T) {
	ctx := testContext(t, 40*time.Second)
	topic := newTopic(t, sharedClient, 1)
	group := topic + "-queue"
	publishValues(t, ctx, topic, "fine", "poison")
	q := joinQueue(t, ctx, group, topic, 0)

	var poison *stave.QueueRecord
	for _, r := range takeQueue(t, q, 2) {
		if string(r.Value) == "poison" {
			poison = r
			if err := q.Reject(ctx, r, stave.WithReason("cannot parse")); err != nil {
				t.Fatalf("reject: %v", err)
			}
		} else if err := q.Ack(ctx, r); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}

	dead := readDeadLetter(t, "_dlq."+group+"."+topic)
	if string(dead.Value) != "poison" {
		t.Fatalf("dead letter value %q", dead.Value)
	}
	want := map[string]string{
		"stave-dlq-topic":      topic,
		"stave-dlq-partition":  "0",
		"stave-dlq-offset":     strconv.FormatUint(poison.Offset, 10),
		"stave-dlq-deliveries": "1",
		"stave-dlq-reason":     "cannot parse",
	}
	for key, value := range want {
		if got, ok := dead.Header(key); !ok || string(got) != value {
			t.Errorf("header %s: %q (present: %v), want %q", key, got, ok, value)
		}
	}
}

// readDeadLetter reads the first record of topic by its exact name. The node creates the
// topic with the first dead letter: until then a reader is refused UNKNOWN_TOPIC, so it is
// opened again (polling with a deadline, as nothing announces the topic).
func readDeadLetter(t *testing.T, topic string) *stave.Record {
	t.Helper()
	deadline := time.Now().Add(queueWait)
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		reader, err := sharedClient.PartitionReader(ctx, topic, nil, stave.Earliest)
		if err != nil {
			cancel()
			t.Fatalf("open a reader of %s: %v", topic, err)
		}
		r, err := reader.Next(ctx)
		reader.Close(context.Background())
		cancel()
		if err == nil {
			return r
		}
		if stave.CodeOf(err) != stave.CodeUnknownTopic || time.Now().After(deadline) {
			t.Fatalf("read %s: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestQueueSecondAckIsRefusedDeliveryNotHeld(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	topic := newTopic(t, sharedClient, 1)
	publishValues(t, ctx, topic, "once")
	q := joinQueue(t, ctx, topic+"-queue", topic, 0)

	r := takeQueue(t, q, 1)[0]
	if err := q.Ack(ctx, r); err != nil {
		t.Fatalf("first ack: %v", err)
	}
	if code := codeOf(t, q.Ack(ctx, r)); code != stave.CodeDeliveryNotHeld {
		t.Fatalf("second ack: %s, want DELIVERY_NOT_HELD", code)
	}
	expectNoQueueRecord(t, q, 300*time.Millisecond)
}

// Settlements made back to back are pipelined (gathered into Settle messages); each gets its
// own answer, a refused one among good ones included, and extended records stay held.
func TestQueueSettlementsMadeTogetherAreAnsweredEach(t *testing.T) {
	ctx := testContext(t, 40*time.Second)
	topic := newTopic(t, sharedClient, 1)
	values := make([]string, 20)
	for i := range values {
		values[i] = strconv.Itoa(i)
	}
	publishValues(t, ctx, topic, values...)
	q := joinQueue(t, ctx, topic+"-queue", topic, 20)

	records := takeQueue(t, q, 20)
	var futures []*stave.SettleFuture
	for _, r := range records[:10] {
		futures = append(futures, q.AckAsync(r))
	}
	twice := q.AckAsync(records[0])
	for _, r := range records[10:] {
		futures = append(futures, q.ExtendAsync(r))
	}
	for i, f := range futures {
		if err := f.Wait(ctx); err != nil {
			t.Fatalf("settlement %d: %v", i, err)
		}
	}
	if code := codeOf(t, twice.Wait(ctx)); code != stave.CodeDeliveryNotHeld {
		t.Fatalf("ack of an acked record: %s", code)
	}
	futures = futures[:0]
	for _, r := range records[10:] {
		futures = append(futures, q.ReleaseAsync(r))
	}
	for i, f := range futures {
		if err := f.Wait(ctx); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	again := takeQueue(t, q, 10)
	var offsets []uint64
	for _, r := range again {
		if r.DeliveryCount != 2 {
			t.Fatalf("offset %d came back with delivery count %d", r.Offset, r.DeliveryCount)
		}
		offsets = append(offsets, r.Offset)
	}
	slices.Sort(offsets)
	for i, offset := range offsets {
		if offset != uint64(10+i) {
			t.Fatalf("released records came back as offsets %v", offsets)
		}
	}
}
