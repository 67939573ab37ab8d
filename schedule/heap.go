package schedule

import (
	"container/heap"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// item is one entry in the fire loop.
type item struct {
	c        compiled
	header   []headerField // the headers its fires share (fireHeader)
	phase    uint32        // spreads its cursor writes (see firer.record)
	slot     time.Time     // next slot to fire; zero when none
	due      time.Time     // slot + jitter, or a retry time
	idx      int           // heap index; -1 when not queued
	last     time.Time     // last slot recorded in the state bucket
	stateRev uint64        // revision of the state key as last seen
	failures int           // fires of the current slot that failed in a row
	gone     bool          // deleted or replaced by an edit of the entry

	// state is the write of the last fired slot, still in flight.
	state       jetstream.PubAckFuture
	stateSlot   time.Time
	stateFailed bool // the last state write failed: retry it synchronously
	// unrecorded is a fired slot not written to the state bucket yet
	// (see firer.record); zero when none.
	unrecorded time.Time
	// failureShown is set while the state bucket shows a failed fire of
	// the entry: the next successful fire is recorded at once, clearing it.
	failureShown bool
	// dirty is set while the item is on firer.dirty: its cursor is to be
	// written to unrecorded once the fire loop's fires are out.
	dirty bool
}

// slotHeap orders items by due time; the fire loop has one, however many
// entries there are. It holds each item's due time beside it, so that
// ordering reads the heap's own array rather than every item's memory.
type slotHeap []queued

// queued is an item in the heap with its due time, in seconds and
// nanoseconds since the Unix epoch (no overflow for any year).
type queued struct {
	sec  int64
	nsec int32
	it   *item
}

func (h slotHeap) Len() int { return len(h) }
func (h slotHeap) Less(i, j int) bool {
	return h[i].sec < h[j].sec || h[i].sec == h[j].sec && h[i].nsec < h[j].nsec
}
func (h slotHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].it.idx, h[j].it.idx = i, j
}

// Push adds an item at its due time; use heap.Push.
func (h *slotHeap) Push(x any) {
	it := x.(*item)
	it.idx = len(*h)
	*h = append(*h, queued{sec: it.due.Unix(), nsec: int32(it.due.Nanosecond()), it: it})
}

// Pop removes the last item; use heap.Pop.
func (h *slotHeap) Pop() any {
	old := *h
	it := old[len(old)-1].it
	old[len(old)-1] = queued{}
	*h = old[:len(old)-1]
	it.idx = -1
	return it
}

// next returns the item due first; the heap must not be empty.
func (h slotHeap) next() *item { return h[0].it }

// reset empties the heap, marking every item of items unqueued.
func (h *slotHeap) reset(items map[string]*item) {
	clear(*h)
	*h = (*h)[:0]
	for _, it := range items {
		it.idx = -1
	}
}

// remove takes it out of the heap if it is queued.
func (h *slotHeap) remove(it *item) {
	if it.idx >= 0 {
		heap.Remove(h, it.idx)
	}
}
