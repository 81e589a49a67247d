package main

import (
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// drain is the clock and the counters of one drain, shared by every member: the first
// delivery, the last ack (sent, or confirmed where the system confirms acks), and how many
// records were acked. done closes when the records'th ack is counted.
type drain struct {
	base        time.Time
	records     int64
	firstNs     atomic.Int64
	lastAckNs   atomic.Int64
	acked       atomic.Int64
	redelivered atomic.Int64
	done        chan struct{}
}

func newDrain(records int) *drain {
	d := &drain{base: time.Now(), records: int64(records), done: make(chan struct{})}
	d.firstNs.Store(math.MaxInt64)
	return d
}

// now is nanoseconds since the drain was made, on the monotonic clock.
func (d *drain) now() int64 { return int64(time.Since(d.base)) }

func (d *drain) delivered(t int64) {
	for {
		cur := d.firstNs.Load()
		if t >= cur || d.firstNs.CompareAndSwap(cur, t) {
			return
		}
	}
}

func (d *drain) ackAt(t int64) {
	for {
		cur := d.lastAckNs.Load()
		if t <= cur || d.lastAckNs.CompareAndSwap(cur, t) {
			return
		}
	}
}

// countAck counts one acked record and closes done at the records'th.
func (d *drain) countAck() {
	if d.acked.Add(1) == d.records {
		close(d.done)
	}
}

func (d *drain) elapsed() time.Duration {
	first := d.firstNs.Load()
	if first == math.MaxInt64 {
		return 0
	}
	return time.Duration(d.lastAckNs.Load() - first)
}

// samples are one member's measurements; each slice has a single writer.
type samples struct {
	deliverToAckNs []int64 // delivery -> ack sent
	ackConfirmNs   []int64 // ack sent -> its confirmation (NATS confirm and sync)
	workNs         int64   // time spent in the work sleep, summed
	workCount      int64
}

// result is the JSON line: the keys of `stave bench queue --json`, then the peer's extras.
type result struct {
	Records            int      `json:"records"`
	Members            int      `json:"members"`
	Partitions         *int     `json:"partitions"`
	WorkMs             float64  `json:"work_ms"`
	RecordsPerS        float64  `json:"records_per_s"`
	AckP50Us           *float64 `json:"ack_p50_us"`
	AckP99Us           *float64 `json:"ack_p99_us"`
	ElapsedS           float64  `json:"elapsed_s"`
	System             string   `json:"system"`
	ServerVersion      string   `json:"server_version"`
	Credit             int      `json:"credit"`
	Size               int      `json:"size"`
	AckMode            string   `json:"ack_mode"`
	AckLatency         string   `json:"ack_latency"`
	Clock              string   `json:"clock"`
	DeliverToAckP50Us  *float64 `json:"deliver_to_ack_p50_us"`
	DeliverToAckP99Us  *float64 `json:"deliver_to_ack_p99_us"`
	WorkMeanUs         *float64 `json:"work_mean_us"`
	IdealRecordsPerS   *float64 `json:"ideal_records_per_s"`
	Acked              int64    `json:"acked"`
	Redelivered        int64    `json:"redelivered"`
	LeftInQueue        int64    `json:"left_in_queue"`
	PreloadS           float64  `json:"preload_s"`
	PreloadRecordsPerS float64  `json:"preload_records_per_s"`
}

// fill puts the drain's figures and the members' merged samples into r.
func (r *result) fill(s settings, d *drain, members []*samples) {
	r.Records, r.Members, r.Credit, r.Size = s.records, s.members, s.credit, s.size
	r.WorkMs = float64(s.work) / float64(time.Millisecond)
	r.Acked, r.Redelivered = d.acked.Load(), d.redelivered.Load()
	el := d.elapsed()
	r.ElapsedS = el.Seconds()
	if el > 0 {
		r.RecordsPerS = float64(s.records) / el.Seconds()
	}
	var toAck, confirm []int64
	var workNs, workCount int64
	for _, m := range members {
		toAck = append(toAck, m.deliverToAckNs...)
		confirm = append(confirm, m.ackConfirmNs...)
		workNs += m.workNs
		workCount += m.workCount
	}
	r.DeliverToAckP50Us, r.DeliverToAckP99Us = percentileUs(toAck, 0.50), percentileUs(toAck, 0.99)
	r.AckP50Us, r.AckP99Us = percentileUs(confirm, 0.50), percentileUs(confirm, 0.99)
	if workCount > 0 {
		mean := float64(workNs) / float64(workCount) / 1e3
		ideal := float64(s.members) * 1e6 / mean
		r.WorkMeanUs, r.IdealRecordsPerS = &mean, &ideal
	}
}

// percentileUs is the nearest-rank percentile in µs, or nil without samples.
func percentileUs(ns []int64, p float64) *float64 {
	if len(ns) == 0 {
		return nil
	}
	slices.Sort(ns)
	i := int(math.Ceil(p*float64(len(ns)))) - 1
	v := float64(ns[max(i, 0)]) / 1e3
	return &v
}
