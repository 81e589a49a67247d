package stave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// TopicPartition names a partition, with an offset where one applies (where reading starts
// for an assigned partition, the next offset to read otherwise).
type TopicPartition struct {
	// Topic of the partition.
	Topic string
	// Partition is the partition's number, from 0.
	Partition uint32
	// Offset, where one applies.
	Offset uint64
}

type partitionKey struct {
	topic     string
	partition uint32
}

// session is what Consumer and PartitionReader share: a Consume stream (opened again after a
// connection failure when it has a group), the records and assignment changes it pushed,
// queued for Next in the order they came, and the credits granted as Next takes records.
type session struct {
	client        *Client
	subscribe     *pb.Subscribe
	creditRecords int
	creditBytes   int
	// reconnect: open a new stream when one fails retriably (groups only: a reader's
	// positions differ per partition, which one subscribe cannot say).
	reconnect bool
	hooks     assignmentHooks
	// queueGroup is set for a queue group's stream: it tracks the deliveries held and the
	// settlements, and credit comes back with settlements instead of as Next takes records.
	queueGroup *queueState

	mu     sync.Mutex
	queue  []event
	notify chan struct{}
	// failure ends the session: Next returns it once the queue is drained.
	failure error
	closed  bool
	stream  *consumeStream
	// held: the partitions the group gives the current stream (as the node last said).
	held    map[partitionKey]struct{}
	waiters map[uint64]chan error
	lastID  uint64
	// done is closed when the receiving goroutine has stopped for good.
	done chan struct{}

	// nextMu serialises Next; the fields below are Next's own.
	nextMu  sync.Mutex
	current []*pb.ConsumedRecord
	index   int
	gen     uint64
	// untold: records and bytes taken since the last credit, on stream gen.
	untoldRecords int
	untoldBytes   int

	// posMu guards positions: per partition, the offset after the last record Next returned
	// (dropped when the partition is revoked or lost).
	posMu     sync.Mutex
	positions map[partitionKey]uint64
}

// assignmentHooks are the callbacks a group consumer's Next runs.
type assignmentHooks struct {
	onAssign func([]TopicPartition)
	onRevoke func([]TopicPartition)
	onLost   func([]TopicPartition)
}

// event is one thing pushed to the client, queued for Next.
type event struct {
	gen        uint64
	records    []*pb.ConsumedRecord
	assignment *pb.Assignment
}

// consumeStream is one Consume call.
type consumeStream struct {
	gen    uint64
	stream pb.Stave_ConsumeClient
	cancel context.CancelFunc
	sendMu sync.Mutex
}

func (s *consumeStream) send(req *pb.ConsumeRequest) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(req)
}

func newSession(client *Client, subscribe *pb.Subscribe, creditRecords, creditBytes int, reconnect bool, hooks assignmentHooks) *session {
	return &session{
		client:        client,
		subscribe:     subscribe,
		creditRecords: creditRecords,
		creditBytes:   creditBytes,
		reconnect:     reconnect,
		hooks:         hooks,
		notify:        make(chan struct{}, 1),
		held:          map[partitionKey]struct{}{},
		waiters:       map[uint64]chan error{},
		positions:     map[partitionKey]uint64{},
		done:          make(chan struct{}),
	}
}

// start opens the first stream, retrying connection failures until ctx ends.
func (s *session) start(ctx context.Context) error {
	delay := backoffStart
	for {
		stream, err := s.open(1)
		if err == nil {
			s.stream = stream
			if s.queueGroup != nil {
				s.queueGroup.streamOpened(stream.gen)
			}
			go s.run(stream)
			return nil
		}
		if !IsRetriable(err) || !sleep(ctx, delay) {
			return fmt.Errorf("stave: open a Consume stream: %w", err)
		}
		delay = nextBackoff(delay)
	}
}

// open starts a stream: the subscribe, then the first credits.
func (s *session) open(gen uint64) (*consumeStream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := s.client.rpc.Consume(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	cs := &consumeStream{gen: gen, stream: stream, cancel: cancel}
	first := &pb.ConsumeRequest{Request: &pb.ConsumeRequest_Subscribe{Subscribe: s.subscribe}}
	credit := &pb.ConsumeRequest{Request: &pb.ConsumeRequest_Credit{Credit: &pb.Credit{
		Records: uint32(s.creditRecords), Bytes: uint64(s.creditBytes),
	}}}
	if err := cs.send(first); err != nil {
		cancel()
		return nil, streamError(stream, err)
	}
	if err := cs.send(credit); err != nil {
		cancel()
		return nil, streamError(stream, err)
	}
	return cs, nil
}

// streamError is why a stream failed: Send reports only io.EOF, Recv the status.
func streamError(stream pb.Stave_ConsumeClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, recvErr := stream.Recv(); recvErr != nil && !errors.Is(recvErr, io.EOF) {
			return recvErr
		}
		return status.Error(codes.Unavailable, "the Consume stream ended")
	}
	return err
}

// run receives from streams until the session fails or closes, opening a new stream after a
// retriable failure when the session reconnects.
func (s *session) run(stream *consumeStream) {
	defer close(s.done)
	for {
		err := s.receive(stream)
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if s.queueGroup != nil {
			if closed {
				s.queueGroup.streamEnded(ErrClosed)
			} else {
				s.queueGroup.streamEnded(err)
			}
		}
		if closed {
			// The node ends the stream once the member has left (or close cancels it).
			for {
				if _, err := stream.stream.Recv(); err != nil {
					break
				}
			}
			stream.cancel()
			s.end(ErrClosed)
			return
		}
		stream.cancel()
		if !s.reconnect || !IsRetriable(err) {
			s.end(err)
			return
		}
		stream = s.reopen(stream.gen+1, err)
		if stream == nil {
			return
		}
	}
}

// receive handles one stream's messages until it ends, and returns why.
func (s *session) receive(stream *consumeStream) error {
	for {
		resp, err := stream.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return status.Error(codes.Unavailable, "the Consume stream ended")
			}
			return err
		}
		switch r := resp.Response.(type) {
		case *pb.ConsumeResponse_Records:
			if r.Records != nil && len(r.Records.Records) > 0 {
				if s.queueGroup != nil {
					s.queueGroup.received(stream.gen, r.Records.Records)
				}
				s.push(event{gen: stream.gen, records: r.Records.Records})
			}
		case *pb.ConsumeResponse_Assignment:
			s.assigned(stream.gen, r.Assignment)
		case *pb.ConsumeResponse_Committed:
			s.committed(r.Committed)
		case *pb.ConsumeResponse_Settled:
			if s.queueGroup != nil {
				s.queueGroup.settled(stream, r.Settled)
			}
		case *pb.ConsumeResponse_Error:
			if err := asError(r.Error); err != nil {
				return err
			}
			return &Error{Code: CodeInternal, Message: "the Consume stream failed without a code"}
		}
	}
}

// reopen opens a new stream after the old one failed retriably: the partitions it held are
// lost (the group gives them out again), and commits waiting fail. It retries until a stream
// opens, the session closes (nil), or a failure is not retriable (the session ends).
func (s *session) reopen(gen uint64, reason error) *consumeStream {
	s.mu.Lock()
	lost := &pb.Assignment{}
	for key := range s.held {
		lost.Lost = append(lost.Lost, &pb.CommitOffset{Topic: key.topic, Partition: key.partition})
	}
	clear(s.held)
	s.failWaitersLocked(reason)
	s.mu.Unlock()
	if len(lost.Lost) > 0 {
		s.push(event{gen: gen - 1, assignment: lost})
	}
	delay := backoffStart
	for {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			s.end(ErrClosed)
			return nil
		}
		stream, err := s.open(gen)
		if err == nil {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				stream.cancel()
				s.end(ErrClosed)
				return nil
			}
			s.stream = stream
			s.mu.Unlock()
			if s.queueGroup != nil {
				s.queueGroup.streamOpened(stream.gen)
			}
			return stream
		}
		if !IsRetriable(err) {
			s.end(err)
			return nil
		}
		time.Sleep(delay)
		delay = nextBackoff(delay)
	}
}

// end fails the session with err: Next returns it after the records already queued.
func (s *session) end(err error) {
	s.mu.Lock()
	if s.failure == nil {
		s.failure = err
	}
	s.failWaitersLocked(err)
	s.mu.Unlock()
	s.wake()
}

func (s *session) failWaitersLocked(err error) {
	for id, waiter := range s.waiters {
		waiter <- err
		delete(s.waiters, id)
	}
}

func (s *session) push(ev event) {
	s.mu.Lock()
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	s.wake()
}

func (s *session) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// assigned applies an assignment change to the partitions held, then queues it for Next.
func (s *session) assigned(gen uint64, change *pb.Assignment) {
	s.mu.Lock()
	for _, p := range change.Assigned {
		s.held[partitionKey{p.Topic, p.Partition}] = struct{}{}
	}
	for _, p := range slices.Concat(change.Revoked, change.Lost) {
		delete(s.held, partitionKey{p.Topic, p.Partition})
	}
	s.mu.Unlock()
	s.push(event{gen: gen, assignment: change})
}

func (s *session) committed(c *pb.Committed) {
	s.mu.Lock()
	waiter, ok := s.waiters[c.Id]
	delete(s.waiters, c.Id)
	s.mu.Unlock()
	if ok {
		waiter <- asError(c.Error)
	}
}

// next returns the next record, running assignment callbacks on the way.
func (s *session) next(ctx context.Context) (*Record, error) {
	r, err := s.nextPB(ctx)
	if err != nil {
		return nil, err
	}
	return recordFromPB(r), nil
}

// nextPB is next, before the record is converted.
func (s *session) nextPB(ctx context.Context) (*pb.ConsumedRecord, error) {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	for {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if s.index < len(s.current) {
			r := s.current[s.index]
			s.current[s.index] = nil
			s.index++
			s.took(r)
			return r, nil
		}
		s.current, s.index = nil, 0
		s.mu.Lock()
		if len(s.queue) > 0 {
			ev := s.queue[0]
			s.queue[0] = event{}
			s.queue = s.queue[1:]
			s.mu.Unlock()
			s.handle(ev)
			continue
		}
		failure := s.failure
		s.mu.Unlock()
		if failure != nil {
			return nil, failure
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// handle takes an event off the queue (in Next).
func (s *session) handle(ev event) {
	if ev.gen != s.gen {
		// A new stream: its credits start afresh, and what the old one owed is forgotten.
		s.gen = ev.gen
		s.untoldRecords, s.untoldBytes = 0, 0
	}
	if ev.records != nil {
		s.current, s.index = ev.records, 0
		return
	}
	change := ev.assignment
	revoked := topicPartitions(change.Revoked)
	lost := topicPartitions(change.Lost)
	s.posMu.Lock()
	for _, p := range slices.Concat(revoked, lost) {
		delete(s.positions, partitionKey{p.Topic, p.Partition})
	}
	s.posMu.Unlock()
	if len(revoked) > 0 && s.hooks.onRevoke != nil {
		s.hooks.onRevoke(revoked)
	}
	if len(lost) > 0 {
		if s.hooks.onLost != nil {
			s.hooks.onLost(lost)
		} else if s.hooks.onRevoke != nil {
			s.hooks.onRevoke(lost)
		}
	}
	if assigned := topicPartitions(change.Assigned); len(assigned) > 0 && s.hooks.onAssign != nil {
		s.hooks.onAssign(assigned)
	}
}

// took notes a record Next returns: its partition's position, and the credits to give back
// (half the window at a time).
func (s *session) took(r *pb.ConsumedRecord) {
	if s.queueGroup != nil {
		return // Credit comes back with settlements.
	}
	s.posMu.Lock()
	s.positions[partitionKey{r.Topic, r.Partition}] = r.Offset + 1
	s.posMu.Unlock()
	size := len(r.Topic) + len(r.Key) + len(r.Value) + 32
	for _, h := range r.Headers {
		size += len(h.Key) + len(h.Value)
	}
	s.untoldRecords++
	s.untoldBytes += size
	recordsDue := s.untoldRecords >= s.creditRecords/2
	bytesDue := s.creditBytes > 0 && s.untoldBytes >= s.creditBytes/2
	if !recordsDue && !bytesDue {
		return
	}
	s.mu.Lock()
	stream := s.stream
	s.mu.Unlock()
	if stream == nil || stream.gen != s.gen {
		return
	}
	credit := &pb.ConsumeRequest{Request: &pb.ConsumeRequest_Credit{Credit: &pb.Credit{
		Records: uint32(s.untoldRecords), Bytes: uint64(max(s.untoldBytes, 1)),
	}}}
	s.untoldRecords, s.untoldBytes = 0, 0
	// A failed send means the stream is ending: the receiving goroutine learns why.
	_ = stream.send(credit)
}

// commit commits the positions of the records Next returned, for the partitions still held.
func (s *session) commit(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		err := s.commitOnce(ctx)
		// A partition revoked while the commit was on its way is refused as a whole: try
		// again without it.
		if CodeOf(err) != CodeInvalidRequest || attempt >= 2 {
			return err
		}
	}
}

func (s *session) commitOnce(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.failure != nil {
		failure := s.failure
		s.mu.Unlock()
		return failure
	}
	var offsets []*pb.CommitOffset
	s.posMu.Lock()
	for key, next := range s.positions {
		if _, ok := s.held[key]; ok {
			offsets = append(offsets, &pb.CommitOffset{Topic: key.topic, Partition: key.partition, Offset: next})
		}
	}
	s.posMu.Unlock()
	if len(offsets) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.lastID++
	id := s.lastID
	waiter := make(chan error, 1)
	s.waiters[id] = waiter
	stream := s.stream
	s.mu.Unlock()
	req := &pb.ConsumeRequest{Request: &pb.ConsumeRequest_Commit{Commit: &pb.Commit{Id: id, Offsets: offsets}}}
	if err := stream.send(req); err != nil {
		s.mu.Lock()
		delete(s.waiters, id)
		s.mu.Unlock()
		return fmt.Errorf("stave: commit: %w", streamError(stream.stream, err))
	}
	select {
	case err := <-waiter:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.waiters, id)
		s.mu.Unlock()
		return ctx.Err()
	}
}

// assignment returns the partitions the group gives this consumer now.
func (s *session) assignment() []TopicPartition {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TopicPartition, 0, len(s.held))
	for key := range s.held {
		out = append(out, TopicPartition{Topic: key.topic, Partition: key.partition})
	}
	sortPartitions(out)
	return out
}

// position returns the offsets after the last records Next returned, per partition.
func (s *session) position() []TopicPartition {
	s.posMu.Lock()
	defer s.posMu.Unlock()
	out := make([]TopicPartition, 0, len(s.positions))
	for key, next := range s.positions {
		out = append(out, TopicPartition{Topic: key.topic, Partition: key.partition, Offset: next})
	}
	sortPartitions(out)
	return out
}

// close ends the stream (the node leaves the group for it) and waits until the session has
// stopped or ctx ends.
func (s *session) close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stream := s.stream
	s.mu.Unlock()
	if stream == nil {
		return nil
	}
	defer stream.cancel()
	// The node ends a stream, leaving the group, as soon as it is refused a message (here a
	// second subscribe). Nodes built before f8f4994 noticed a cancelled call only when they
	// next pushed a record, so an idle member held its partitions until then; the refused
	// message ends the stream at once on every node. Waiting for the end also means the
	// member has left when Close returns.
	goodbye := &pb.ConsumeRequest{Request: &pb.ConsumeRequest_Subscribe{Subscribe: s.subscribe}}
	if err := stream.send(goodbye); err == nil {
		_ = stream.stream.CloseSend()
		select {
		case <-s.done:
			return nil
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	stream.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func topicPartitions(offsets []*pb.CommitOffset) []TopicPartition {
	if len(offsets) == 0 {
		return nil
	}
	out := make([]TopicPartition, len(offsets))
	for i, o := range offsets {
		out[i] = TopicPartition{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset}
	}
	return out
}

func sortPartitions(ps []TopicPartition) {
	slices.SortFunc(ps, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
}
