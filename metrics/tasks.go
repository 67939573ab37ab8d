package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetworker/jetworker/task"
)

// taskStores sums the record writes the observed task stores could not
// make ([task.Store.Lost]) into jetworker_task_record_writes_lost_total.
type taskStores struct {
	mu     sync.Mutex
	stores []*task.Store
}

func (t *taskStores) add(s *task.Store) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stores = append(t.stores, s)
}

func (t *taskStores) lost() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n uint64
	for _, s := range t.stores {
		n += s.Lost()
	}
	return float64(n)
}

func newLostCounter(t *taskStores) prometheus.CounterFunc {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "jetworker", Name: "task_record_writes_lost_total",
		Help: "Task record writes this process gave up on (the tasks ran; their records lag behind them): task.Store.Lost of the observed stores.",
	}, t.lost)
}

// ObserveTaskStore adds s's lost record writes ([task.Store.Lost]) to
// jetworker_task_record_writes_lost_total, read at scrape time. Observe
// the store the process's tracked publishes and workers use; a second
// store adds its count. It is safe for concurrent use.
func (m *Metrics) ObserveTaskStore(s *task.Store) { m.tasks.add(s) }
