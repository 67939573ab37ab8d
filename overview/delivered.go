package overview

import (
	"github.com/jetworker/jetworker/consumer"
)

// Load is a consumer's state with what its live workers run: of the
// messages delivered and not yet acknowledged (AckPending), Running are
// the handlers running now, as the workers' presence records
// ([consumer.WorkerInfo.InFlight]) say, and Buffered the rest, delivered
// to a worker and waiting for a free handler. Both are nil when the
// workers are unknown (their presence records could not be read).
type Load struct {
	Consumer
	Running  *int64 `json:"running"`
	Buffered *int64 `json:"buffered"`
}

// Delivered is what [SplitDelivered] found: each consumer's [Load] and the
// totals over them (nil when the workers are unknown).
type Delivered struct {
	Consumers []Load
	Running   *int64
	Buffered  *int64
}

// SplitDelivered splits each consumer's delivered tasks into those
// running and those waiting for a handler, from the live workers' presence
// records: a worker counts for the consumer of its Stream and Consumer.
// Buffered is never negative (a presence record may be up to a refresh
// older than the consumer's state). With workersKnown false, Running and
// Buffered stay nil. The dashboard's overview and "jetworker status" show
// what it returns. It does no I/O.
func SplitDelivered(consumers []Consumer, workers []consumer.WorkerInfo, workersKnown bool) Delivered {
	d := Delivered{Consumers: make([]Load, 0, len(consumers))}
	running := map[[2]string]int64{}
	for _, w := range workers {
		running[[2]string{w.Stream, w.Consumer}] += w.InFlight
	}
	var totalRunning, totalBuffered int64
	for _, c := range consumers {
		l := Load{Consumer: c}
		if workersKnown {
			r := running[[2]string{c.Stream, c.Name}]
			b := max(int64(c.AckPending)-r, 0)
			l.Running, l.Buffered = &r, &b
			totalRunning += r
			totalBuffered += b
		}
		d.Consumers = append(d.Consumers, l)
	}
	if workersKnown {
		d.Running, d.Buffered = &totalRunning, &totalBuffered
	}
	return d
}
