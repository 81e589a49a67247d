package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitMember is one consumer: its own connection and channel, basic.qos prefetch = credit,
// manual ack of every record.
type rabbitMember struct {
	conn       *amqp.Connection
	ch         *amqp.Channel
	tag        string
	deliveries <-chan amqp.Delivery
	samples    samples
	ackErrors  atomic.Int64
}

// quorumArgs declares a quorum queue (RabbitMQ 3.8+): a Raft log on disk whose WAL is
// fsynced (fdatasync) before a publish is confirmed; 3.10 has no setting that turns it off.
var quorumArgs = amqp.Table{"x-queue-type": "quorum"}

// runRabbit preloads a quorum queue with publisher confirms and drains it with s.members
// consumers. AMQP 0-9-1 does not confirm a basic.ack, so there is no ack latency: the clock
// stops at the last ack sent, and the JSON carries delivery -> ack sent instead.
func runRabbit(ctx context.Context, s settings) (result, error) {
	res := result{
		System: "rabbitmq", AckMode: "basic.ack per record (not confirmed: AMQP 0-9-1 has no ack confirmation)",
		AckLatency: "n/a: AMQP 0-9-1 does not confirm a basic.ack",
		Clock:      "first delivery -> last basic.ack sent",
	}
	conn, err := dialRabbit(ctx, s.url, "w6-admin")
	if err != nil {
		return res, err
	}
	defer conn.Close()
	if v, ok := conn.Properties["version"].(string); ok {
		res.ServerVersion = v
	}
	ch, err := conn.Channel()
	if err != nil {
		return res, err
	}
	if _, err = ch.QueueDeclare(s.name, true, false, false, false, quorumArgs); err != nil {
		return res, fmt.Errorf("declare quorum queue %s: %w", s.name, err)
	}
	if err = rabbitPreload(ctx, s, ch, &res); err != nil {
		return res, err
	}
	d := newDrain(s.records)
	members, err := rabbitDrain(ctx, s, d)
	for _, m := range members {
		m.conn.Close()
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
	// Every member's channel is closed: records delivered but unacked would be back in the
	// queue, ready, and counted here.
	q, err := ch.QueueDeclarePassive(s.name, true, false, false, false, quorumArgs)
	if err != nil {
		return res, fmt.Errorf("queue %s after the drain: %w", s.name, err)
	}
	res.LeftInQueue = int64(q.Messages)
	if q.Messages != 0 {
		return res, fmt.Errorf("%d records left in the queue after every record was acked", q.Messages)
	}
	return res, nil
}

func dialRabbit(ctx context.Context, url, name string) (*amqp.Connection, error) {
	cfg := amqp.Config{Properties: amqp.Table{"connection_name": name}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := amqp.DialConfig(url, cfg)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				return nil, fmt.Errorf("connect %s: %w", url, err)
			}
			return conn, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rabbitPreload publishes s.records persistent records with publisher confirms, up to
// s.pubWindow unconfirmed, and checks that the queue holds them all.
func rabbitPreload(ctx context.Context, s settings, ch *amqp.Channel, res *result) error {
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("preload: confirm.select: %w", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, s.pubWindow+1))
	payload := make([]byte, s.size)
	start := time.Now()
	outstanding, nacks := 0, 0
	await := func() error {
		select {
		case c, ok := <-confirms:
			if !ok {
				return fmt.Errorf("preload: channel closed while awaiting confirms")
			}
			if !c.Ack {
				nacks++
			}
			outstanding--
			return nil
		case <-ctx.Done():
			return fmt.Errorf("preload: %w", ctx.Err())
		}
	}
	for i := 0; i < s.records; i++ {
		err := ch.PublishWithContext(ctx, "", s.name, false, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: payload})
		if err != nil {
			return fmt.Errorf("preload: publish %d: %w", i, err)
		}
		outstanding++
		for outstanding >= s.pubWindow {
			if err := await(); err != nil {
				return err
			}
		}
	}
	for outstanding > 0 {
		if err := await(); err != nil {
			return err
		}
	}
	if nacks > 0 {
		return fmt.Errorf("preload: %d publishes nacked", nacks)
	}
	res.PreloadS = time.Since(start).Seconds()
	res.PreloadRecordsPerS = float64(s.records) / res.PreloadS
	q, err := ch.QueueDeclarePassive(s.name, true, false, false, false, quorumArgs)
	if err != nil {
		return fmt.Errorf("preload: queue %s: %w", s.name, err)
	}
	if q.Messages != s.records {
		return fmt.Errorf("preload: the queue holds %d records, not %d", q.Messages, s.records)
	}
	logf("preloaded %d records in %.1f s", s.records, res.PreloadS)
	return nil
}

// rabbitDrain opens every member's connection and channel first, then starts their
// consumers one after the other, and waits until every record is acked.
func rabbitDrain(ctx context.Context, s settings, d *drain) ([]*rabbitMember, error) {
	members := make([]*rabbitMember, 0, s.members)
	for i := 0; i < s.members; i++ {
		conn, err := dialRabbit(ctx, s.url, fmt.Sprintf("w6-member-%d", i))
		if err != nil {
			return members, err
		}
		m := &rabbitMember{conn: conn, tag: fmt.Sprintf("w6-member-%d", i)}
		members = append(members, m)
		if m.ch, err = conn.Channel(); err != nil {
			return members, err
		}
		if err = m.ch.Qos(s.credit, 0, false); err != nil {
			return members, fmt.Errorf("member %d: basic.qos: %w", i, err)
		}
	}
	var wg sync.WaitGroup
	for i, m := range members {
		var err error
		m.deliveries, err = m.ch.Consume(s.name, m.tag, false, false, false, false, nil)
		if err != nil {
			return members, fmt.Errorf("member %d: basic.consume: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.consume(s, d)
		}()
	}
	select {
	case <-d.done:
	case <-ctx.Done():
		return members, fmt.Errorf("drain: %d of %d records acked: %w", d.acked.Load(), s.records, ctx.Err())
	}
	// Every record is acked, so no member holds one: basic.cancel and channel.close end their
	// delivery loops (either one closes the delivery channel).
	for _, m := range members {
		_ = m.ch.Cancel(m.tag, false)
		_ = m.ch.Close()
	}
	wg.Wait()
	return members, nil
}

// consume handles one delivery at a time: note it, do the work, ack it.
func (m *rabbitMember) consume(s settings, d *drain) {
	for dv := range m.deliveries {
		t := d.now()
		d.delivered(t)
		if dv.Redelivered {
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
		if err := dv.Ack(false); err != nil {
			m.ackErrors.Add(1)
		}
		d.ackAt(sent)
		d.countAck()
	}
}
