package dashboard_test

import (
	"context"
	"fmt"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/schedule"
)

// runScheduler runs a scheduler until the test ends.
func runScheduler(t *testing.T, b *testBundle) {
	t.Helper()
	sc, err := schedule.New(b.js, schedule.Config{Logger: testutil.Logger(t, 0)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler Run: %v", err)
		}
	})
}

// TestScheduleFireErrorShown: a schedule whose fires fail (its stream was
// deleted after it was saved) says so on the schedules page, on its own
// page and in the API, with the scheduler's error and how many fires
// failed, not only when it last fired.
func TestScheduleFireErrorShown(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{})
	provision(t, b.js)
	store, _ := schedule.NewStore(b.js, schedule.StoreConfig{})
	for _, e := range []schedule.Entry{
		{Name: "broken", Spec: "@every 1s", Subject: "tasks.broken.x"},
		{Name: "quiet", Spec: "@daily", Subject: "tasks.quiet.x", Paused: true},
	} {
		if _, err := store.Put(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.js.DeleteStream(t.Context(), "TASKS"); err != nil {
		t.Fatal(err)
	}
	runScheduler(t, b)
	var st schedule.State
	testutil.Eventually(t, 15*time.Second, func() error {
		var err error
		if st, err = store.State(t.Context(), "broken"); err != nil || st.Error == "" {
			return fmt.Errorf("state of broken: %+v, %v; want a fire error recorded", st, err)
		}
		return nil
	})

	list := b.get(t, "/schedules")
	for _, want := range []string{`data-testid="fire-failing-broken"`, `data-testid="fire-error-broken"`, html.EscapeString(st.Error)} {
		if !strings.Contains(list.body, want) {
			t.Errorf("schedules page: want %s", want)
		}
	}
	if strings.Contains(list.body, `fire-failing-quiet`) {
		t.Error("schedules page: the quiet schedule is shown failing")
	}
	one := b.get(t, "/schedules/broken")
	if !strings.Contains(one.body, `data-testid="fire-error">`+html.EscapeString(st.Error)) || !strings.Contains(one.body, `data-testid="fire-failures">`) {
		t.Errorf("schedule page: want the fire error %q and the failure count", st.Error)
	}
	type view struct {
		Name         string    `json:"name"`
		StateKnown   bool      `json:"state_known"`
		FireError    string    `json:"fire_error"`
		FireErrorAt  time.Time `json:"fire_error_at"`
		FireFailures int       `json:"fire_failures"`
	}
	v := decode[view](t, b.get(t, "/api/schedules/broken"))
	if !v.StateKnown || v.FireError == "" || v.FireErrorAt.IsZero() || v.FireFailures < 1 {
		t.Errorf("GET /api/schedules/broken: got %+v, want the fire error, its time and count", v)
	}
	all := decode[struct {
		Schedules []view `json:"schedules"`
	}](t, b.get(t, "/api/schedules"))
	if len(all.Schedules) != 2 || all.Schedules[0].FireError == "" || all.Schedules[1].FireError != "" || !all.Schedules[1].StateKnown {
		t.Errorf("GET /api/schedules: got %+v, want broken failing and quiet known and fine", all.Schedules)
	}
}
