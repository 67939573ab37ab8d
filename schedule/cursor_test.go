package schedule

// An internal test of how cursor writes are spread over entries.

import (
	"fmt"
	"testing"
	"time"
)

// TestRecordAfterSpreadsEntries: an entry's cursor is written after
// between every/2 and every, never later, and 10,000 entries named like a
// fleet's are spread evenly over that span, so that entries that fire
// together do not write their cursors together.
func TestRecordAfterSpreadsEntries(t *testing.T) {
	t.Parallel()
	const every = 30 * time.Second
	for _, phase := range []uint32{0, 1, 1 << 31, ^uint32(0)} {
		if got := recordAfter(every, phase); got < every/2 || got >= every {
			t.Errorf("phase %d: %s, want in [%s, %s)", phase, got, every/2, every)
		}
	}
	var buckets [15]int // one per second of the span
	for i := range 10000 {
		d := recordAfter(every, phaseOf(fmt.Sprintf("bench-%06d", i)))
		buckets[int((d-every/2)/time.Second)]++
	}
	for s, n := range buckets {
		if n < 10000/15*7/10 || n > 10000/15*13/10 {
			t.Errorf("second %d of the span: %d entries write then, want about %d (all: %v)", s, n, 10000/15, buckets)
		}
	}
}
