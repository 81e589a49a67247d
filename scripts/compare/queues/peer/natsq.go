package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The body of a positive ack (nats-server's AckAck).
var natsAckBody = []byte("+ACK")

// natsMember is one pulling client: its own connection, the shared durable consumer, and (in
// -ack confirm) a subscription that receives the server's reply to each ack.
type natsMember struct {
	nc        *nats.Conn
	cons      jetstream.Consumer
	cc        jetstream.ConsumeContext
	inbox     string
	samples   samples
	sent      atomic.Int64 // acks sent with a reply subject
	confirmed atomic.Int64 // replies received
	ackErrors atomic.Int64
}

// runNats preloads a work-queue stream (file storage, R1) and drains it through one durable
// pull consumer shared by s.members clients, each with its own connection.
func runNats(ctx context.Context, s settings) (result, error) {
	res := result{System: "nats", AckMode: s.ackMode}
	switch s.ackMode {
	case "confirm":
		res.AckLatency = "ack sent with a reply subject -> the server's reply (sent once the ack is applied: the message removed from the work-queue stream); acks pipelined"
		res.Clock = "first delivery -> last ack reply"
	case "sync":
		res.AckLatency = "DoubleAck: ack sent -> the server's reply; one ack in flight per member"
		res.Clock = "first delivery -> last ack reply"
	case "plain":
		res.AckLatency = "n/a: Ack() is not confirmed"
		res.Clock = "first delivery -> last ack sent"
	}
	nc, err := nats.Connect(s.url, nats.Name("w6-admin"))
	if err != nil {
		return res, fmt.Errorf("connect %s: %w", s.url, err)
	}
	defer nc.Close()
	res.ServerVersion = nc.ConnectedServerVersion()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(s.pubWindow))
	if err != nil {
		return res, err
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: s.name, Subjects: []string{s.name}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Replicas: 1,
	})
	if err != nil {
		return res, fmt.Errorf("create stream %s: %w", s.name, err)
	}
	if err := natsPreload(ctx, s, js, stream, &res); err != nil {
		return res, err
	}
	_, err = js.CreateOrUpdateConsumer(ctx, s.name, jetstream.ConsumerConfig{
		Durable: s.name, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
		// The members' credit is the limit; the server's cap is their sum. AckWait is far
		// beyond any record's time in flight here, so nothing is redelivered for lateness.
		MaxAckPending: s.members * s.credit, AckWait: 5 * time.Minute,
	})
	if err != nil {
		return res, fmt.Errorf("create consumer %s: %w", s.name, err)
	}
	d := newDrain(s.records)
	members, err := natsDrain(ctx, s, d)
	for _, m := range members {
		m.nc.Close()
	}
	if err != nil {
		return res, err
	}
	all := make([]*samples, len(members))
	var ackErrors int64
	for i, m := range members {
		all[i] = &m.samples
		ackErrors += m.ackErrors.Load()
	}
	res.fill(s, d, all)
	if ackErrors > 0 {
		return res, fmt.Errorf("%d acks failed", ackErrors)
	}
	res.LeftInQueue, err = natsLeft(ctx, stream, s.ackMode == "plain")
	if err != nil {
		return res, err
	}
	if res.LeftInQueue != 0 {
		return res, fmt.Errorf("%d records left in the stream after every record was acked", res.LeftInQueue)
	}
	return res, nil
}

// natsPreload publishes s.records records with up to s.pubWindow publish acks outstanding
// and checks that the stream holds them all.
func natsPreload(ctx context.Context, s settings, js jetstream.JetStream, stream jetstream.Stream, res *result) error {
	payload := make([]byte, s.size)
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, s.records)
	for i := 0; i < s.records; i++ {
		// Under sync_interval: always the window stays full for a while (every message is
		// fsynced): wait for room rather than fail after the default 200 ms.
		f, err := js.PublishAsync(s.name, payload, jetstream.WithStallWait(time.Minute))
		if err != nil {
			return fmt.Errorf("preload: publish %d: %w", i, err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("preload: %w", ctx.Err())
	}
	for i, f := range futures {
		select {
		case err := <-f.Err():
			return fmt.Errorf("preload: publish %d: %w", i, err)
		default:
		}
	}
	res.PreloadS = time.Since(start).Seconds()
	res.PreloadRecordsPerS = float64(s.records) / res.PreloadS
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("preload: stream info: %w", err)
	}
	if info.State.Msgs != uint64(s.records) {
		return fmt.Errorf("preload: the stream holds %d records, not %d", info.State.Msgs, s.records)
	}
	logf("preloaded %d records in %.1f s", s.records, res.PreloadS)
	return nil
}

// natsDrain connects the members, starts them together and waits until every record is acked
// (and, with -ack confirm, every ack confirmed).
func natsDrain(ctx context.Context, s settings, d *drain) ([]*natsMember, error) {
	members := make([]*natsMember, 0, s.members)
	for i := 0; i < s.members; i++ {
		m, err := natsConnectMember(ctx, s, d, i)
		if err != nil {
			return members, err
		}
		members = append(members, m)
	}
	for i, m := range members {
		cc, err := m.cons.Consume(m.handler(s, d), jetstream.PullMaxMessages(s.credit),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				logf("member %d: %v", i, err)
			}))
		if err != nil {
			return members, fmt.Errorf("member %d: consume: %w", i, err)
		}
		m.cc = cc
	}
	select {
	case <-d.done:
	case <-ctx.Done():
		return members, fmt.Errorf("drain: %d of %d records acked: %w", d.acked.Load(), s.records, ctx.Err())
	}
	for _, m := range members {
		m.cc.Stop()
	}
	if s.ackMode != "confirm" {
		return members, nil
	}
	deadline := time.Now().Add(time.Minute)
	for _, m := range members {
		for m.confirmed.Load() < m.sent.Load() {
			if time.Now().After(deadline) {
				return members, fmt.Errorf("drain: acks unconfirmed a minute after the last was sent")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return members, nil
}

func natsConnectMember(ctx context.Context, s settings, d *drain, i int) (*natsMember, error) {
	nc, err := nats.Connect(s.url, nats.Name(fmt.Sprintf("w6-member-%d", i)))
	if err != nil {
		return nil, fmt.Errorf("member %d: connect: %w", i, err)
	}
	m := &natsMember{nc: nc}
	js, err := jetstream.New(nc)
	if err != nil {
		return m, err
	}
	if m.cons, err = js.Consumer(ctx, s.name, s.name); err != nil {
		return m, fmt.Errorf("member %d: consumer %s: %w", i, s.name, err)
	}
	if s.ackMode == "confirm" {
		// The reply subject carries the ack's send time, so the reply needs no lookup.
		m.inbox = nats.NewInbox()
		_, err = nc.Subscribe(m.inbox+".*", func(msg *nats.Msg) {
			t := d.now()
			sent, perr := strconv.ParseInt(msg.Subject[len(m.inbox)+1:], 10, 64)
			if perr == nil {
				m.samples.ackConfirmNs = append(m.samples.ackConfirmNs, t-sent)
			}
			d.ackAt(t)
			m.confirmed.Add(1)
		})
		if err != nil {
			return m, err
		}
		if err = nc.Flush(); err != nil {
			return m, err
		}
	}
	return m, nil
}

// handler handles one record: note the delivery, do the work, ack. Consume calls it from one
// goroutine per member, one record at a time.
func (m *natsMember) handler(s settings, d *drain) jetstream.MessageHandler {
	return func(msg jetstream.Msg) {
		t := d.now()
		d.delivered(t)
		if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
			d.redelivered.Add(1)
		}
		if s.work > 0 {
			w := d.now()
			time.Sleep(s.work)
			m.samples.workNs += d.now() - w
			m.samples.workCount++
		}
		sent := d.now()
		m.samples.deliverToAckNs = append(m.samples.deliverToAckNs, sent-t)
		var err error
		switch s.ackMode {
		case "confirm":
			m.sent.Add(1)
			err = m.nc.PublishRequest(msg.Reply(), m.inbox+"."+strconv.FormatInt(sent, 10), natsAckBody)
		case "sync":
			err = msg.DoubleAck(context.Background())
			done := d.now()
			m.samples.ackConfirmNs = append(m.samples.ackConfirmNs, done-sent)
			d.ackAt(done)
		case "plain":
			err = msg.Ack()
			d.ackAt(sent)
		}
		if err != nil {
			m.ackErrors.Add(1)
			if s.ackMode == "confirm" {
				m.sent.Add(-1)
			}
		}
		d.countAck()
	}
}

// natsLeft is the number of records still in the stream. Unconfirmed acks (-ack plain) may
// still be on their way: then it waits up to 10 s for the count to reach zero.
func natsLeft(ctx context.Context, stream jetstream.Stream, wait bool) (int64, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			return -1, fmt.Errorf("stream info after the drain: %w", err)
		}
		if info.State.Msgs == 0 || !wait || time.Now().After(deadline) || ctx.Err() != nil {
			return int64(info.State.Msgs), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
