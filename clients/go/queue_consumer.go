package stave

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stave-broker/stave/clients/go/internal/pb"
)

// QueueOrdering says how a queue group orders deliveries.
type QueueOrdering int

const (
	// OrderingNone delivers records in any order.
	OrderingNone QueueOrdering = iota
	// OrderingKey has no two records with the same key in flight in the group at once, and
	// delivers a key's records in offset order (records without a key: any order).
	OrderingKey
)

const (
	// settleBatchMax is the most settlements sent in one Settle message; more wait for
	// the next.
	settleBatchMax = 1_000
	// drainWaitMax bounds how long Close waits for settlements to be answered.
	drainWaitMax = 10 * time.Second
	// The node's bounds on a settlement (proto: Settlement). It refuses a Settle message
	// with one settlement past them by ending the whole stream, so the client keeps within
	// them: a longer delay fails the settlement at once, a longer reason is cut (the proto
	// keeps "up to 1 KiB").
	delayMax       = 24 * time.Hour
	reasonBytesMax = 1024
)

// QueueConsumerConfig says which queue group a QueueConsumer joins and what it reads.
type QueueConsumerConfig struct {
	// Group is the queue group: its members share the records of Topics one by one.
	// Required.
	Group string
	// Topics are topic names or patterns of dot-separated words (`v1.user.*`, `v1.#`).
	// Required.
	Topics []string
	// FromBeginning starts a new group at each partition's first record (default: at the
	// end, only records written from now on).
	FromBeginning bool
	// Credit is the most records this member holds unsettled at once (default 64).
	Credit int
	// Lock is how long a delivery stays locked to this member before it is delivered again
	// (0: the group's; a new group's default is 30 s). Millisecond precision.
	Lock time.Duration
	// MaxDeliveries is how many deliveries a record gets before a release or an expired lock
	// sends it to the dead-letter topic (0: the group's; a new group's default is 5).
	MaxDeliveries int
	// Ordering is the group's ordering. A member asking for another ordering than the
	// group's is refused with CodeGroupMismatch.
	Ordering QueueOrdering
}

// QueueRecord is a record delivered by a queue group: a Record, how many times it was
// delivered, and until when it is locked to this member.
type QueueRecord struct {
	Record
	// DeliveryCount counts this record's deliveries, this one included.
	DeliveryCount uint32
	// LockDeadline is when the lock expires: a record not settled by then is delivered
	// again (to any member).
	LockDeadline time.Time
}

// QueueConsumer is a member of a queue group: the group's members share every partition
// record by record, each record locked to the member it went to until that member settles
// it with Ack, Release or Reject (Extend renews the lock), or the lock expires. Every record
// Next returns must be settled once: the stream's credit is the most records the member
// holds, and one record of credit comes back per Ack, Release or Reject of a record it holds.
//
// Settlements are pipelined: the Async forms return at once, and settlements made while the
// previous Settle message was being sent go out together in the next. Next may be called
// from one goroutine at a time; the settle methods and Close from any.
//
// A connection failure makes the consumer join again; the node releases what it held, and
// records received before can no longer be settled (CodeDeliveryNotHeld, or the failure).
type QueueConsumer struct {
	session   *session
	group     string
	closeOnce sync.Once
}

// QueueConsumer joins config.Group and starts receiving records. ctx bounds only the
// opening of the stream; the consumer lives until Close.
func (c *Client) QueueConsumer(ctx context.Context, config QueueConsumerConfig) (*QueueConsumer, error) {
	subscribe, err := queueSubscribe(config)
	if err != nil {
		return nil, err
	}
	credit := config.Credit
	if credit <= 0 {
		credit = 64
	}
	// A byte credit of 0 lifts the byte limit: Credit counts records only.
	s := newSession(c, subscribe, credit, 0, true, assignmentHooks{})
	s.queueGroup = newQueueState(s)
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	go s.queueGroup.sendSettlements()
	return &QueueConsumer{session: s, group: config.Group}, nil
}

func queueSubscribe(config QueueConsumerConfig) (*pb.Subscribe, error) {
	if config.Group == "" {
		return nil, errors.New("stave: a queue consumer needs a group")
	}
	if len(config.Topics) == 0 {
		return nil, errors.New("stave: a queue consumer needs at least one topic or pattern")
	}
	options := &pb.QueueOptions{}
	switch config.Ordering {
	case OrderingNone:
		options.Ordering = pb.QueueOrdering_QUEUE_ORDERING_NONE
	case OrderingKey:
		options.Ordering = pb.QueueOrdering_QUEUE_ORDERING_KEY
	default:
		return nil, errors.New("stave: Ordering must be OrderingNone or OrderingKey")
	}
	if config.Lock > 0 {
		lockMs := max(config.Lock.Milliseconds(), 1)
		options.LockMs = &lockMs
	}
	if config.MaxDeliveries > 0 {
		maxDeliveries := uint32(config.MaxDeliveries)
		options.MaxDeliveries = &maxDeliveries
	}
	subscribe := &pb.Subscribe{
		Topics: config.Topics,
		Group:  config.Group,
		Mode:   pb.ConsumeMode_CONSUME_MODE_QUEUE,
		Queue:  options,
	}
	if config.FromBeginning {
		subscribe.Start = &pb.Subscribe_Earliest{Earliest: true}
	} else {
		subscribe.Start = &pb.Subscribe_Latest{Latest: true}
	}
	return subscribe, nil
}

// Group returns the queue group's name.
func (q *QueueConsumer) Group() string { return q.group }

// Next returns the next record, waiting for one until ctx ends. After the consumer fails or
// is closed, Next returns the error (ErrClosed after Close) once the records already
// received are taken. A refused join (CodeGroupMismatch, an unknown topic) comes back here.
func (q *QueueConsumer) Next(ctx context.Context) (*QueueRecord, error) {
	r, err := q.session.nextPB(ctx)
	if err != nil {
		return nil, err
	}
	return &QueueRecord{
		Record:        *recordFromPB(r),
		DeliveryCount: r.DeliveryCount,
		LockDeadline:  time.UnixMilli(r.LockDeadlineMs),
	}, nil
}

// SettleOption sets an optional part of a Release or Reject.
type SettleOption func(*pb.Settlement)

// WithDelay has a released record delivered again no sooner than d from now (at most one
// day: a longer delay fails the settlement with CodeInvalidRequest; millisecond precision).
func WithDelay(d time.Duration) SettleOption {
	return func(s *pb.Settlement) { s.DelayMs = uint64(max(d.Milliseconds(), 0)) }
}

// WithReason says why a record was released or rejected; a dead letter carries it in its
// stave-dlq-reason header. It is cut to 1 KiB (at a UTF-8 character boundary).
func WithReason(reason string) SettleOption {
	return func(s *pb.Settlement) { s.Reason = cutReason(reason) }
}

// cutReason cuts reason to reasonBytesMax bytes, at a UTF-8 character boundary.
func cutReason(reason string) string {
	if len(reason) <= reasonBytesMax {
		return reason
	}
	end := reasonBytesMax
	for end > 0 && !utf8.RuneStart(reason[end]) {
		end--
	}
	return reason[:end]
}

// Ack settles r as done: it is never delivered again. It waits for the node's answer;
// CodeDeliveryNotHeld means this member does not hold that delivery (settled already, or
// its lock expired).
func (q *QueueConsumer) Ack(ctx context.Context, r *QueueRecord) error {
	return q.AckAsync(r).Wait(ctx)
}

// AckAsync is Ack without waiting for the answer.
func (q *QueueConsumer) AckAsync(r *QueueRecord) *SettleFuture {
	return q.session.queueGroup.settle(r, pb.SettleAction_SETTLE_ACK, nil)
}

// Release has r delivered again (to any member), at once or after WithDelay; past the
// group's max deliveries it goes to the dead-letter topic instead (with WithReason).
func (q *QueueConsumer) Release(ctx context.Context, r *QueueRecord, opts ...SettleOption) error {
	return q.ReleaseAsync(r, opts...).Wait(ctx)
}

// ReleaseAsync is Release without waiting for the answer.
func (q *QueueConsumer) ReleaseAsync(r *QueueRecord, opts ...SettleOption) *SettleFuture {
	return q.session.queueGroup.settle(r, pb.SettleAction_SETTLE_RELEASE, opts)
}

// Reject sends r to the dead-letter topic `_dlq.{group}.{topic}` now (WithReason says why).
func (q *QueueConsumer) Reject(ctx context.Context, r *QueueRecord, opts ...SettleOption) error {
	return q.RejectAsync(r, opts...).Wait(ctx)
}

// RejectAsync is Reject without waiting for the answer.
func (q *QueueConsumer) RejectAsync(r *QueueRecord, opts ...SettleOption) *SettleFuture {
	return q.session.queueGroup.settle(r, pb.SettleAction_SETTLE_REJECT, opts)
}

// Extend keeps r locked to this member for another lock period from now. It gives no
// credit back: the record is still held.
func (q *QueueConsumer) Extend(ctx context.Context, r *QueueRecord) error {
	return q.ExtendAsync(r).Wait(ctx)
}

// ExtendAsync is Extend without waiting for the answer.
func (q *QueueConsumer) ExtendAsync(r *QueueRecord) *SettleFuture {
	return q.session.queueGroup.settle(r, pb.SettleAction_SETTLE_EXTEND, nil)
}

// Close waits (until ctx ends) for the settlements already made to be answered, then ends
// the stream: the node releases the records this member still holds, delivered again at
// once to the other members.
func (q *QueueConsumer) Close(ctx context.Context) error {
	var err error
	q.closeOnce.Do(func() {
		q.session.queueGroup.drain(ctx)
		err = q.session.close(ctx)
		q.session.queueGroup.stop()
	})
	return err
}

// SettleFuture is the outcome of a settlement made with an Async method.
type SettleFuture struct {
	done chan struct{}
	err  error
}

func settledFuture(err error) *SettleFuture {
	f := &SettleFuture{done: make(chan struct{}), err: err}
	close(f.done)
	return f
}

// Done is closed once the settlement is answered (or failed).
func (f *SettleFuture) Done() <-chan struct{} { return f.done }

// Wait returns the settlement's outcome: nil once the node settled it, its *Error (e.g.
// CodeDeliveryNotHeld), or the stream's failure. It returns ctx's error if ctx ends first.
func (f *SettleFuture) Wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// delivery names one delivery of a record: the record and the delivery count it came with.
type delivery struct {
	topic     string
	partition uint32
	offset    uint64
	count     uint32
}

type pendingSettlement struct {
	delivery delivery
	message  *pb.Settlement
	future   *SettleFuture
}

func (p *pendingSettlement) complete(err error) {
	p.future.err = err
	close(p.future.done)
}

// queueState is a queue stream's side of the session: the deliveries the current stream
// holds, the settlements waiting to be sent and those sent, by Settle id.
type queueState struct {
	session *session

	mu sync.Mutex
	// gen is the stream whose deliveries are tracked; live is false from its end until the
	// next one opens (settlements then fail at once).
	gen        uint64
	live       bool
	closed     bool
	deliveries map[delivery]struct{}
	waiting    []*pendingSettlement
	inFlight   map[uint64][]*pendingSettlement
	lastID     uint64
	// idle is closed (and replaced) whenever nothing waits and nothing is in flight.
	idle chan struct{}

	kick chan struct{}
	quit chan struct{}
}

func newQueueState(s *session) *queueState {
	return &queueState{
		session:    s,
		deliveries: map[delivery]struct{}{},
		inFlight:   map[uint64][]*pendingSettlement{},
		idle:       make(chan struct{}),
		kick:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
	}
}

func (q *queueState) settle(r *QueueRecord, action pb.SettleAction, opts []SettleOption) *SettleFuture {
	message := &pb.Settlement{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		DeliveryCount: r.DeliveryCount, Action: action,
	}
	for _, opt := range opts {
		opt(message)
	}
	if message.DelayMs > uint64(delayMax.Milliseconds()) {
		return settledFuture(&Error{Code: CodeInvalidRequest,
			Message: fmt.Sprintf("a release delays at most %s, not %d ms", delayMax, message.DelayMs)})
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return settledFuture(ErrClosed)
	}
	if !q.live {
		return settledFuture(status.Error(codes.Unavailable, "stave: the queue stream is reconnecting"))
	}
	p := &pendingSettlement{
		delivery: delivery{r.Topic, r.Partition, r.Offset, r.DeliveryCount},
		message:  message,
		future:   &SettleFuture{done: make(chan struct{})},
	}
	q.waiting = append(q.waiting, p)
	select {
	case q.kick <- struct{}{}:
	default:
	}
	return p.future
}

// sendSettlements sends what waits, as one Settle message at a time, until stop.
func (q *queueState) sendSettlements() {
	for {
		select {
		case <-q.kick:
		case <-q.quit:
			return
		}
		for q.sendBatch() {
		}
	}
}

// sendBatch sends up to settleBatchMax waiting settlements in one Settle; false when none
// waited.
func (q *queueState) sendBatch() bool {
	q.session.mu.Lock()
	stream := q.session.stream
	q.session.mu.Unlock()
	q.mu.Lock()
	n := min(len(q.waiting), settleBatchMax)
	if n == 0 {
		q.mu.Unlock()
		return false
	}
	batch := q.waiting[:n:n]
	q.waiting = q.waiting[n:]
	if !q.live || stream == nil || stream.gen != q.gen {
		q.mu.Unlock()
		for _, p := range batch {
			p.complete(status.Error(codes.Unavailable, "stave: the queue stream ended"))
		}
		q.checkIdle()
		return true
	}
	q.lastID++
	id := q.lastID
	q.inFlight[id] = batch
	q.mu.Unlock()
	settle := &pb.Settle{Id: id, Settlements: make([]*pb.Settlement, n)}
	for i, p := range batch {
		settle.Settlements[i] = p.message
	}
	// A failed send means the stream is ending: streamEnded fails what is in flight.
	_ = stream.send(&pb.ConsumeRequest{Request: &pb.ConsumeRequest_Settle{Settle: settle}})
	return true
}

// settled completes the settlements of a Settled answer, and grants one record of credit
// for each delivery held that an ack, release or reject ended.
func (q *queueState) settled(stream *consumeStream, answer *pb.Settled) {
	q.mu.Lock()
	batch, ok := q.inFlight[answer.Id]
	delete(q.inFlight, answer.Id)
	granted := 0
	for _, p := range batch {
		if p.message.Action == pb.SettleAction_SETTLE_EXTEND {
			continue
		}
		if _, held := q.deliveries[p.delivery]; held {
			delete(q.deliveries, p.delivery)
			granted++
		}
	}
	live := q.live && stream.gen == q.gen
	q.mu.Unlock()
	if !ok {
		return
	}
	if granted > 0 && live {
		credit := &pb.ConsumeRequest{Request: &pb.ConsumeRequest_Credit{Credit: &pb.Credit{Records: uint32(granted)}}}
		// A failed send means the stream is ending: the receiving goroutine learns why.
		_ = stream.send(credit)
	}
	for i, err := range settleOutcomes(answer.Results, len(batch)) {
		batch[i].complete(err)
	}
	q.checkIdle()
}

// settleOutcomes is the error (nil: done) of each of count settlements, from a Settled's
// results: one per settlement, in order. A node that failed a whole Settle answers one
// result for all of them; no results at all is every one done (unset).
func settleOutcomes(results []*pb.Error, count int) []error {
	out := make([]error, count)
	switch {
	case len(results) == count:
		for i, r := range results {
			out[i] = asError(r)
		}
	case len(results) == 1:
		for i := range out {
			out[i] = asError(results[0])
		}
	case len(results) > 0:
		missing := &Error{Code: CodeInternal,
			Message: fmt.Sprintf("the node answered %d results for %d settlements", len(results), count)}
		for i := range out {
			out[i] = missing
			if i < len(results) {
				out[i] = asError(results[i])
			}
		}
	}
	return out
}

// received notes the deliveries a stream pushed.
func (q *queueState) received(gen uint64, records []*pb.ConsumedRecord) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if gen != q.gen {
		return
	}
	for _, r := range records {
		q.deliveries[delivery{r.Topic, r.Partition, r.Offset, r.DeliveryCount}] = struct{}{}
	}
}

func (q *queueState) streamOpened(gen uint64) {
	q.mu.Lock()
	q.gen = gen
	q.live = true
	q.mu.Unlock()
}

// streamEnded fails the settlements not answered: the node released what the stream held.
func (q *queueState) streamEnded(reason error) {
	if reason == nil {
		reason = status.Error(codes.Unavailable, "stave: the queue stream ended")
	}
	q.mu.Lock()
	q.live = false
	clear(q.deliveries)
	failed := q.waiting
	q.waiting = nil
	for id, batch := range q.inFlight {
		failed = append(failed, batch...)
		delete(q.inFlight, id)
	}
	q.mu.Unlock()
	for _, p := range failed {
		p.complete(reason)
	}
	q.checkIdle()
}

// checkIdle wakes drain once nothing waits and nothing is in flight.
func (q *queueState) checkIdle() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 && len(q.inFlight) == 0 {
		close(q.idle)
		q.idle = make(chan struct{})
	}
}

// drain refuses new settlements and waits until those made are answered or ctx ends.
func (q *queueState) drain(ctx context.Context) {
	q.mu.Lock()
	q.closed = true
	busy := len(q.waiting) > 0 || len(q.inFlight) > 0
	idle := q.idle
	q.mu.Unlock()
	if !busy {
		return
	}
	select {
	case <-idle:
	case <-ctx.Done():
	case <-time.After(drainWaitMax):
	}
}

func (q *queueState) stop() {
	close(q.quit)
}
