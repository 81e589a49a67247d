package stave

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// publishStream is one PublishStream call: requests go out in order and are answered in
// order (the node writes one request before it begins the next, so records keep their order
// within a partition), up to the producer's in-flight limit.
type publishStream struct {
	stream pb.Stave_PublishStreamClient
	cancel context.CancelFunc

	mu sync.Mutex
	// sent: requests sent and not answered yet, oldest first.
	sent []*publishRequest
	// broken: why the stream ended (nil while it works).
	broken error
	seq    uint64
}

// publishRequest is one request on the stream and the records it carries, in order.
type publishRequest struct {
	seq    uint64
	items  []*item
	sentAt time.Time
}

// errStreamEnded is what the records of a stream that ended without a status get.
var errStreamEnded = status.Error(codes.Unavailable, "the publish stream ended")

// openPublishStream starts a stream; answers are handed to onAnswer, and when the stream
// ends every unanswered request is handed to onBroken with the reason. Both run on the
// stream's receiving goroutine.
func openPublishStream(
	rpc pb.StaveClient,
	onAnswer func(*publishRequest, *pb.PublishResponse),
	onBroken func(*publishStream, []*publishRequest, error),
) (*publishStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := rpc.PublishStream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &publishStream{stream: stream, cancel: cancel}
	go s.receive(onAnswer, onBroken)
	return s, nil
}

// send sends a request; false when the stream is broken (the request was not taken, and
// the caller must send it elsewhere).
func (s *publishStream) send(items []*item) bool {
	records := make([]*pb.PublishRecord, len(items))
	for i, it := range items {
		records[i] = it.record
	}
	s.mu.Lock()
	if s.broken != nil {
		s.mu.Unlock()
		return false
	}
	s.seq++
	req := &publishRequest{seq: s.seq, items: items, sentAt: time.Now()}
	s.sent = append(s.sent, req)
	s.mu.Unlock()
	// Only the producer's dispatcher sends, so Send is never called concurrently. A failed
	// Send means the stream is gone: Recv returns why, and the request is failed with it.
	_ = s.stream.Send(&pb.PublishRequest{Records: records, Sequence: req.seq})
	return true
}

// oldest returns when the oldest unanswered request was sent (zero if none).
func (s *publishStream) oldest() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sent) == 0 {
		return time.Time{}
	}
	return s.sent[0].sentAt
}

// abandon ends the stream with reason: its unanswered requests are failed with it.
func (s *publishStream) abandon(reason error) {
	s.mu.Lock()
	if s.broken == nil {
		s.broken = reason
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *publishStream) receive(
	onAnswer func(*publishRequest, *pb.PublishResponse),
	onBroken func(*publishStream, []*publishRequest, error),
) {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			s.fail(err, onBroken)
			return
		}
		s.mu.Lock()
		if len(s.sent) == 0 || s.sent[0].seq != resp.Sequence {
			s.mu.Unlock()
			s.abandon(status.Errorf(codes.Internal, "publish stream answered sequence %d out of order", resp.Sequence))
			continue
		}
		req := s.sent[0]
		s.sent[0] = nil
		s.sent = s.sent[1:]
		s.mu.Unlock()
		onAnswer(req, resp)
	}
}

func (s *publishStream) fail(err error, onBroken func(*publishStream, []*publishRequest, error)) {
	s.mu.Lock()
	if s.broken == nil {
		if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled || errors.Is(err, io.EOF) {
			err = errStreamEnded
		}
		s.broken = err
	}
	reason := s.broken
	unanswered := s.sent
	s.sent = nil
	s.mu.Unlock()
	s.cancel()
	onBroken(s, unanswered, reason)
}
