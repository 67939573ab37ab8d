package overview_test

import (
	"fmt"
	"testing"

	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/overview"
)

func TestSplitDelivered(t *testing.T) {
	t.Parallel()
	consumers := []overview.Consumer{
		{Stream: "TASKS", Name: "mailer", AckPending: 297},
		{Stream: "TASKS", Name: "idle", AckPending: 0},
		{Stream: "OTHER", Name: "mailer", AckPending: 3},
	}
	workers := []consumer.WorkerInfo{
		{Stream: "TASKS", Consumer: "mailer", InFlight: 1},
		{Stream: "TASKS", Consumer: "mailer", InFlight: 1},
		{Stream: "OTHER", Consumer: "mailer", InFlight: 5}, // a record newer than the consumer's state
		{Stream: "ELSEWHERE", Consumer: "x", InFlight: 7},  // not a consumer shown
	}
	show := func(p *int64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	d := overview.SplitDelivered(consumers, workers, true)
	want := []struct{ running, buffered string }{{"2", "295"}, {"0", "0"}, {"5", "0"}}
	if len(d.Consumers) != len(want) {
		t.Fatalf("got %d consumers, want %d", len(d.Consumers), len(want))
	}
	for i, w := range want {
		l := d.Consumers[i]
		if l.Consumer.Name != consumers[i].Name || show(l.Running) != w.running || show(l.Buffered) != w.buffered {
			t.Errorf("%s/%s: got running %s buffered %s, want %s and %s", l.Stream, l.Name, show(l.Running), show(l.Buffered), w.running, w.buffered)
		}
	}
	if show(d.Running) != "7" || show(d.Buffered) != "295" {
		t.Errorf("totals over the consumers shown: got running %s buffered %s, want 7 and 295", show(d.Running), show(d.Buffered))
	}
	unknown := overview.SplitDelivered(consumers, nil, false)
	if unknown.Running != nil || unknown.Buffered != nil || unknown.Consumers[0].Running != nil || unknown.Consumers[0].Buffered != nil {
		t.Error("with the workers unknown: got counts, want nil (unknown, not 0)")
	}
	if empty := overview.SplitDelivered(nil, nil, true); empty.Consumers == nil || show(empty.Running) != "0" {
		t.Errorf("no consumers: got %+v, want [] and totals 0", empty)
	}
}
