package stave

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

func TestUUIDv7(t *testing.T) {
	form := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	before := time.Now().UnixMilli()
	for range 10_000 {
		id, idBytes := newUUIDv7()
		if string(idBytes) != id {
			t.Fatalf("%q and %q", id, idBytes)
		}
		if !form.MatchString(id) {
			t.Fatalf("%q is not a UUIDv7", id)
		}
		if seen[id] {
			t.Fatalf("%q made twice", id)
		}
		seen[id] = true
	}
	id, _ := newUUIDv7()
	var ms int64
	fmt.Sscanf(id[0:8]+id[9:13], "%x", &ms)
	if ms < before || ms > time.Now().UnixMilli() {
		t.Fatalf("%q holds %d ms, not now", id, ms)
	}
}

func TestPublishRecordsKeepTheCallersIDAndHeaders(t *testing.T) {
	headers := make([]Header, 1, 4)
	headers[0] = Header{Key: "a", Value: []byte("1")}
	r := Record{Topic: "t", Headers: headers}
	recs, ids := publishRecords([]Record{r})
	rec, id := recs[0], ids[0]
	if len(rec.Headers) != 2 || rec.Headers[1].Key != IDHeader || string(rec.Headers[1].Value) != id {
		t.Fatalf("headers %v, id %q", rec.Headers, id)
	}
	if len(r.Headers) != 1 || len(headers[:2][1].Key) != 0 {
		t.Fatalf("the caller's headers were changed: %v", headers[:2])
	}
	if rec.Key != nil || rec.Partition != nil || rec.TimestampMs != nil || rec.Value == nil {
		t.Fatalf("unset fields were set: %v", rec)
	}
	r.Headers = append(r.Headers, Header{Key: IDHeader, Value: []byte("mine")}, Header{Key: IDHeader, Value: []byte("second")})
	recs, ids = publishRecords([]Record{r})
	rec, id = recs[0], ids[0]
	if id != "mine" || len(rec.Headers) != 3 {
		t.Fatalf("own id: %q, headers %v", id, rec.Headers)
	}
}

func TestRetriable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{&Error{Code: CodeNotLeader}, true},
		{&Error{Code: CodeLeaderNotAvailable}, true},
		{&Error{Code: CodeRequestTimedOut}, true},
		{&Error{Code: CodeDuplicateInFlight}, true},
		{&Error{Code: CodeStorageFull}, true},
		{&Error{Code: CodeUnknownTopic}, false},
		{&Error{Code: CodeInvalidRequest}, false},
		{fmt.Errorf("wrapped: %w", &Error{Code: CodeNotLeader}), true},
		{status.Error(codes.Unavailable, "down"), true},
		{fmt.Errorf("wrapped: %w", status.Error(codes.DeadlineExceeded, "slow")), true},
		{status.Error(codes.InvalidArgument, "bad"), false},
		{context.Canceled, false},
		{errors.New("other"), false},
		{nil, false},
	}
	for _, c := range cases {
		if got := IsRetriable(c.err); got != c.want {
			t.Errorf("IsRetriable(%v) = %v", c.err, got)
		}
	}
}

func TestErrorText(t *testing.T) {
	err := error(&Error{Code: CodeUnknownTopic, Message: `unknown topic "x"`})
	if err.Error() != `stave: UNKNOWN_TOPIC: unknown topic "x"` {
		t.Fatal(err.Error())
	}
	if CodeOf(fmt.Errorf("publish: %w", err)) != CodeUnknownTopic || CodeOf(errors.New("x")) != CodeNone {
		t.Fatal("CodeOf")
	}
	if ErrorCode(99).String() != "ErrorCode(99)" || CodeStorageFull.String() != "STORAGE_FULL" {
		t.Fatal("String")
	}
}

func TestRetryDelayGrowsToOneSecond(t *testing.T) {
	want := []time.Duration{25, 25, 50, 100, 200, 400, 800, 1000, 1000}
	for tries, w := range want {
		if got := retryDelay(tries); got != w*time.Millisecond {
			t.Errorf("retryDelay(%d) = %s, want %s", tries, got, w*time.Millisecond)
		}
	}
}

func TestQueueSettlementBounds(t *testing.T) {
	if got := cutReason(strings.Repeat("é", 600)); got != strings.Repeat("é", 512) {
		t.Fatalf("a 1,200-byte reason cut to %d bytes", len(got))
	}
	if got := cutReason("short"); got != "short" {
		t.Fatalf("short reason became %q", got)
	}
	q := newQueueState(nil)
	q.live = true
	r := &QueueRecord{Record: Record{Topic: "t"}, DeliveryCount: 1}
	f := q.settle(r, pb.SettleAction_SETTLE_RELEASE, []SettleOption{WithDelay(25 * time.Hour)})
	if err := f.Wait(context.Background()); CodeOf(err) != CodeInvalidRequest {
		t.Fatalf("a 25 h delay: %v", err)
	}
	if len(q.waiting) != 0 {
		t.Fatal("a refused settlement was queued")
	}
}

func TestSettleOutcomes(t *testing.T) {
	ok, refused := &pb.Error{}, &pb.Error{Code: pb.ErrorCode_DELIVERY_NOT_HELD}
	got := settleOutcomes([]*pb.Error{ok, refused}, 2)
	if got[0] != nil || CodeOf(got[1]) != CodeDeliveryNotHeld {
		t.Fatalf("one per settlement: %v", got)
	}
	// A whole Settle refused: one result for every settlement.
	for _, err := range settleOutcomes([]*pb.Error{refused}, 3) {
		if CodeOf(err) != CodeDeliveryNotHeld {
			t.Fatalf("one result for three: %v", err)
		}
	}
	if got := settleOutcomes(nil, 2); got[0] != nil || got[1] != nil {
		t.Fatalf("no results: %v", got)
	}
	if got := settleOutcomes([]*pb.Error{ok, ok}, 3); CodeOf(got[2]) != CodeInternal {
		t.Fatalf("a result missing: %v", got)
	}
}
