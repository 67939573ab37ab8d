package consumer

import (
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/jetworker/jetworker"
)

// waitBounds are the upper bounds, in seconds, of the enqueue-to-start
// buckets of [WorkerInfo.Wait]: from 1ms to 5 minutes. It is never
// written: [WaitBounds] hands out copies.
var waitBounds = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// WaitBuckets is the length of [WorkerInfo.Wait]: one bucket per bound of
// [WaitBounds] and one above the last.
const WaitBuckets = len(waitBounds) + 1

// WaitBounds returns the upper bounds, in seconds and ascending, of the
// enqueue-to-start buckets in [WorkerInfo.Wait]: Wait[i] counts tasks
// that waited more than WaitBounds()[i-1] and at most WaitBounds()[i]
// seconds, and the last bucket those that waited longer than the last
// bound (5 minutes). It returns a new slice on every call.
func WaitBounds() []float64 { return slices.Clone(waitBounds[:]) }

// waitHistogram counts first deliveries by enqueue-to-start time
// ([jetworker.Task.QueueWait]), one counter per bucket of waitBounds and
// one above them. It is safe for concurrent use.
type waitHistogram struct {
	n [WaitBuckets]atomic.Uint64
}

// observe counts t, started at started, if it is an original task's first
// delivery with a known enqueue time.
func (h *waitHistogram) observe(t *jetworker.Task, started time.Time) {
	wait, ok := t.QueueWait(started)
	if !ok {
		return
	}
	h.n[sort.SearchFloat64s(waitBounds[:], wait.Seconds())].Add(1)
}

// counts returns the counters, reusing buf.
func (h *waitHistogram) counts(buf []uint64) []uint64 {
	buf = buf[:0]
	for i := range h.n {
		buf = append(buf, h.n[i].Load())
	}
	return buf
}
