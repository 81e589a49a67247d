package stave_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	stave "github.com/stave-broker/stave/clients/go"
)

var topicSeq atomic.Int64

// newTopic creates a topic named after the test, with its own number.
func newTopic(t *testing.T, client *stave.Client, partitions int) string {
	t.Helper()
	clean := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")
	name := strings.ToLower(fmt.Sprintf("%s-%d-%d", clean, time.Now().UnixNano()%1e6, topicSeq.Add(1)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.CreateTopic(ctx, name, stave.TopicConfig{Partitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatalf("create topic %s: %v", name, err)
	}
	return name
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testContext is a context that ends with the test or after timeout.
func testContext(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// readN reads n records from next, failing the test on an error.
func readN(t *testing.T, ctx context.Context, next func(context.Context) (*stave.Record, error), n int) []*stave.Record {
	t.Helper()
	out := make([]*stave.Record, 0, n)
	for len(out) < n {
		r, err := next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, r)
	}
	return out
}

// expectNothing checks that next has no record within wait.
func expectNothing(t *testing.T, next func(context.Context) (*stave.Record, error), wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := next(ctx)
	if err == nil {
		t.Fatalf("expected no more records, got %s/%d@%d id %s", r.Topic, r.Partition, r.Offset, r.ID())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expected no more records, got error %v", err)
	}
}

// codeOf returns the server code err carries, checking it is a *stave.Error.
func codeOf(t *testing.T, err error) stave.ErrorCode {
	t.Helper()
	var serr *stave.Error
	if !errors.As(err, &serr) {
		t.Fatalf("expected a *stave.Error, got %T: %v", err, err)
	}
	return serr.Code
}
