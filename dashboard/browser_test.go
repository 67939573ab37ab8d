package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
)

// chromiumPath finds a Chromium binary. A missing browser fails the test,
// so that CI cannot skip it silently; set JETWORKER_SKIP_BROWSER=1 to skip
// it on purpose.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("JETWORKER_SKIP_BROWSER") == "1" {
		t.Skip("no Chromium found and JETWORKER_SKIP_BROWSER=1")
	}
	t.Fatal("browser test needs Chromium (chromium in PATH or /usr/bin/chromium; on Debian: apt-get install -y chromium); set JETWORKER_SKIP_BROWSER=1 to skip it")
	return ""
}

// TestBrowserReplayDeadLetter drives the web dashboard in headless
// Chromium: the overview shows a consumer's pending count and refreshes it
// live, and a dead letter replayed by clicking (and confirming) is
// processed by the running consumer. It writes a screenshot of each page to
// t.TempDir(), and also to $JETWORKER_SCREENSHOT_DIR when that is set.
func TestBrowserReplayDeadLetter(t *testing.T) {
	t.Parallel()
	chrome := chromiumPath(t)
	b := setup(t, dashboard.Config{RefreshInterval: 300 * time.Millisecond})
	provision(t, b.js)

	// An idle durable keeps its messages pending; a running one
	// dead-letters the report until it is replayed.
	if _, err := consumer.Provision(t.Context(), b.js, consumer.Config{Durable: "idle", FilterSubjects: []string{"tasks.idle.>"}}); err != nil {
		t.Fatal(err)
	}
	replayed := make(chan string, 1)
	startConsumer(t, b.js, func(ctx context.Context, tk *jetworker.Task) error {
		if from := tk.Header.Get(jetworker.HeaderReplayedFrom); from != "" {
			replayed <- from
			return nil
		}
		return jetworker.Permanent(errors.New("report template missing"))
	}, consumer.Config{Durable: "reports", FilterSubjects: []string{"tasks.work.>"}, Concurrency: 2})
	store, _ := schedule.NewStore(b.js, schedule.StoreConfig{})
	for _, e := range []schedule.Entry{
		{Name: "reports/daily", Spec: "0 9 * * 1-5", TimeZone: "Europe/Berlin", Subject: "tasks.work.daily"},
		{Name: "heartbeat", Spec: "@every 30s", Subject: "tasks.idle.heartbeat", Paused: true},
	} {
		if _, err := store.Put(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}

	pub, _ := publisher.New(b.js, publisher.Config{})
	publish := func(subj, data string) {
		t.Helper()
		if _, err := pub.Publish(t.Context(), subj, []byte(data), nil); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	publish("tasks.idle.a", `{}`)
	publish("tasks.idle.b", `{}`)
	publish("tasks.work.report", `{"report":"weekly","format":"pdf"}`)
	dead, _ := dlq.New(b.js, dlq.Config{})
	var seq uint64
	testutil.Eventually(t, 10*time.Second, func() error {
		page, err := dead.List(t.Context(), dlq.Filter{}, 0, 0)
		dls := page.Entries
		if err != nil || len(dls) != 1 {
			return fmt.Errorf("dead letters: %d, %v; want 1", len(dls), err)
		}
		seq = dls[0].Seq
		return nil
	})

	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(1280, 800),
	)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	// Accept every confirm() dialog, and record its message.
	dialogs := make(chan string, 4)
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	dialogsDone := make(chan struct{})
	go func() {
		defer close(dialogsDone)
		for ev, err := range events {
			if err != nil {
				return
			}
			dialogs <- ev.Message
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	defer func() { cancel(); <-dialogsDone }()
	shots := []string{t.TempDir()}
	if dir := os.Getenv("JETWORKER_SCREENSHOT_DIR"); dir != "" {
		shots = append(shots, dir)
	}
	screenshot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		for _, dir := range shots {
			if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
				t.Fatalf("write screenshot: %v", err)
			}
		}
	}
	// waitText waits until sel's text satisfies ok. The live region is
	// replaced every RefreshInterval, so a read can miss its node: retry.
	waitText := func(sel, want string, ok func(string) bool) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() error {
			s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
			if err != nil {
				return fmt.Errorf("read %s: %w", sel, err)
			}
			if s = strings.TrimSpace(s); !ok(s) {
				return fmt.Errorf("%s: got %q, want %s", sel, s, want)
			}
			return nil
		})
	}
	is := func(want string) func(string) bool { return func(s string) bool { return s == want } }

	// Overview: the idle consumer's pending count, refreshed live.
	pending := `[data-testid="pending-TASKS-idle"]`
	if err := chromedp.Do(ctx, chromedp.Navigate(b.http.URL+"/"), chromedp.WaitVisible(chromedp.CSS(pending))); err != nil {
		t.Fatalf("load overview: %v", err)
	}
	waitText(pending, "2 pending", is("2"))
	publish("tasks.idle.c", `{}`)
	waitText(pending, "3 pending after a publish (auto-refresh)", is("3"))
	screenshot("overview.png")

	// Dead letters: view it, then replay it by clicking and confirming.
	replay := fmt.Sprintf(`[data-testid="replay-%d"]`, seq)
	if err := chromedp.Do(ctx, chromedp.Navigate(fmt.Sprintf("%s/dead-letters/%d", b.http.URL, seq))); err != nil {
		t.Fatalf("load dead letter: %v", err)
	}
	waitText(`pre.error-box`, "the handler's error", is("permanent: report template missing"))
	screenshot("dead-letter.png")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(b.http.URL+"/dead-letters"),
		chromedp.WaitVisible(chromedp.CSS(replay)),
	); err != nil {
		t.Fatalf("load dead letters: %v", err)
	}
	screenshot("dead-letters.png")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(replay)), chromedp.WaitVisible(chromedp.CSS(`.flash`))); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.flash.err`), chromedp.AtLeast(0))); err == nil && msg != "" {
		t.Fatalf("replay: got the error %q, want a confirmation", msg)
	}
	select {
	case msg := <-dialogs:
		if !strings.Contains(msg, fmt.Sprintf("Replay dead letter #%d", seq)) {
			t.Errorf("confirmation: got %q, want it to name dead letter %d", msg, seq)
		}
	default:
		t.Error("replay did not ask for confirmation")
	}
	waitText(`.flash.ok`, "a replay confirmation", func(s string) bool { return strings.Contains(s, "replayed as TASKS/") })
	select {
	case from := <-replayed:
		if want := jetworker.Ref("DLQ", seq); from != want {
			t.Errorf("replayed task's %s: got %q, want it to name %s", jetworker.HeaderReplayedFrom, from, want)
		}
	case <-ctx.Done():
		t.Fatal("replayed task not processed by the consumer")
	}
	if page, _ := dead.List(t.Context(), dlq.Filter{}, 0, 0); len(page.Entries) != 0 {
		t.Errorf("dead letters after replay: got %d, want 0", len(page.Entries))
	}

	// Schedules and workers render.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(b.http.URL+"/schedules"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="schedule-reports/daily"]`)),
	); err != nil {
		t.Fatalf("load schedules: %v", err)
	}
	screenshot("schedules.png")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(b.http.URL+"/schedules/"+strings.ReplaceAll("reports/daily", "/", "%2F")),
		chromedp.WaitVisible(chromedp.CSS(`form.edit`)),
	); err != nil {
		t.Fatalf("load schedule: %v", err)
	}
	screenshot("schedule.png")
	if err := chromedp.Do(ctx, chromedp.Navigate(b.http.URL+"/workers"), chromedp.WaitVisible(chromedp.CSS(`#live table`))); err != nil {
		t.Fatalf("load workers: %v", err)
	}
	screenshot("workers.png")
	// Back to the overview for the final picture.
	if err := chromedp.Do(ctx, chromedp.Navigate(b.http.URL+"/"), chromedp.WaitVisible(chromedp.CSS(pending))); err != nil {
		t.Fatalf("load overview: %v", err)
	}
	screenshot("dashboard.png")
}
