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

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/consumer"
	"github.com/jetworker/jetworker/dashboard"
	"github.com/jetworker/jetworker/dlq"
	"github.com/jetworker/jetworker/internal/outboxdata"
	"github.com/jetworker/jetworker/internal/testutil"
	"github.com/jetworker/jetworker/publisher"
	"github.com/jetworker/jetworker/schedule"
	"github.com/jetworker/jetworker/task"
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

// browser is a headless Chromium tab for one test: it accepts every
// confirm() dialog (recording its message) and writes screenshots to
// t.TempDir() and to $JETWORKER_SCREENSHOT_DIR when that is set.
type browser struct {
	t       *testing.T
	ctx     context.Context
	dialogs chan string
	shots   []string
}

func newBrowser(t *testing.T, chrome string, width, height int, timeout time.Duration) *browser {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.WindowSize(width, height),
	)
	ctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	br := &browser{t: t, ctx: ctx, dialogs: make(chan string, 16), shots: []string{t.TempDir()}}
	if dir := os.Getenv("JETWORKER_SCREENSHOT_DIR"); dir != "" {
		br.shots = append(br.shots, dir)
	}
	// Accept every confirm() dialog, and record its message.
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	dialogsDone := make(chan struct{})
	go func() {
		defer close(dialogsDone)
		for ev, err := range events {
			if err != nil {
				return
			}
			select {
			case br.dialogs <- ev.Message:
			default:
			}
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-dialogsDone
		cancelBrowser()
		cancelAlloc()
	})
	return br
}

func (br *browser) screenshot(name string) {
	br.t.Helper()
	png, err := chromedp.Run(br.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		br.t.Fatalf("screenshot %s: %v", name, err)
	}
	for _, dir := range br.shots {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			br.t.Fatalf("write screenshot: %v", err)
		}
	}
}

// waitText waits until sel's text satisfies ok. The live region is
// replaced every RefreshInterval, so a read can miss its node: retry.
func (br *browser) waitText(sel, want string, ok func(string) bool) {
	br.t.Helper()
	testutil.Eventually(br.t, 10*time.Second, func() error {
		s, err := chromedp.Run(br.ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			return fmt.Errorf("read %s: %w", sel, err)
		}
		if s = strings.TrimSpace(s); !ok(s) {
			return fmt.Errorf("%s: got %q, want %s", sel, s, want)
		}
		return nil
	})
}

// open navigates to path and waits until sel is visible.
func (br *browser) open(url, sel string) {
	br.t.Helper()
	ctx, cancel := context.WithTimeout(br.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		br.t.Fatalf("open %s, waiting for %s: %v", url, sel, err)
	}
}

// click clicks sel and waits until then is visible.
func (br *browser) click(sel, then string) {
	br.t.Helper()
	ctx, cancel := context.WithTimeout(br.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)), chromedp.WaitVisible(chromedp.CSS(then))); err != nil {
		br.t.Fatalf("click %s, waiting for %s: %v", sel, then, err)
	}
}

// eval evaluates a JavaScript expression.
func eval[T any](br *browser, expr string) T {
	br.t.Helper()
	v, err := chromedp.Run(br.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		br.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func is(want string) func(string) bool { return func(s string) bool { return s == want } }

// drainDialogs forgets the confirm() dialogs accepted so far.
func (br *browser) drainDialogs() {
	for {
		select {
		case <-br.dialogs:
		default:
			return
		}
	}
}

// dialog waits for the next confirm() dialog and checks its message.
func (br *browser) dialog(what string, ok func(string) bool) {
	br.t.Helper()
	select {
	case msg := <-br.dialogs:
		if !ok(msg) {
			br.t.Errorf("%s: the confirmation said %q", what, msg)
		}
	case <-time.After(10 * time.Second):
		br.t.Errorf("%s: no confirmation was asked", what)
	}
}

// count returns how many elements sel matches.
func (br *browser) count(sel string) int {
	br.t.Helper()
	return eval[int](br, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// texts returns the trimmed text of every element sel matches.
func (br *browser) texts(sel string) []string {
	br.t.Helper()
	return eval[[]string](br, fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).map(e => e.textContent.trim())`, sel))
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
		seq = dls[0].Sequence
		return nil
	})

	br := newBrowser(t, chrome, 1280, 800, 30*time.Second)
	ctx, dialogs, screenshot, waitText := br.ctx, br.dialogs, br.screenshot, br.waitText

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
	// The refresh is paused first (it is remembered for every page): it
	// swaps the live region every 300ms, which can remove the button
	// between finding and clicking it.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`localStorage.setItem("jetworker.refresh-paused", "1"), true`)); err != nil {
		t.Fatal(err)
	}
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

// TestBrowserOperator drives the operator's pages in headless Chromium, in
// one browser session: signing in through the login form with the token
// (a session cookie, then the overview); the overview's charts after tasks
// ran, throughput and p50/p99 latency; pausing the refresh and choosing
// its interval; dark mode; no page wider than a 420px phone; the
// dead-letter list filtered by a subject wildcard and paged with its
// cursor, then "replay everything matching" confirmed with its count; the
// task-ID and time-range filters; ticking dead letters and deleting the
// selection with its count confirmed; the task browser listing an
// untracked and a tracked pending task, filtered by subject and paged, its
// Delayed, Retrying, Succeeded and Failed tabs, Run now on a delayed task
// and Delete on a pending one; the outbox page (a fixed outbox: the
// dashboard reads one only through its interface); and a running tracked
// task's page updating live, then cancelled from the page.
func TestBrowserOperator(t *testing.T) {
	t.Parallel()
	chrome := chromiumPath(t)
	// Samples every second, and the workers refresh their presence twice
	// as often: while tasks run, every sample sees the latency buckets grow,
	// so p50/p99 are lines rather than lone points.
	now := time.Now().UTC()
	b := setup(t, dashboard.Config{Addr: "127.0.0.1:0", SampleInterval: time.Second, RefreshInterval: 300 * time.Millisecond, DeadLetterLimit: 2,
		BearerToken: "operator-token",
		Outbox:      fixedOutbox{outboxdata.Stats{Pending: 3, Due: 1, Lag: 2 * time.Second, Dead: 1}},
		OutboxDeadFunc: deadRows(outboxdata.DeadRow{ID: 7, MsgID: "lost-1", Subject: "nowhere.x", Data: []byte(`{}`),
			Reason: "no stream captures nowhere.x", FailedAt: now, CreatedAt: now, AvailableAt: now})})
	provision(t, b.js)
	store, err := task.New(b.js, task.Config{})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := publisher.New(b.js, publisher.Config{Tasks: store})
	publish := func(subj string, opts *publisher.PublishOpts) publisher.Result {
		t.Helper()
		res, err := pub.Publish(t.Context(), subj, []byte(`{"subject":"`+subj+`"}`), opts)
		if err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
		return res
	}
	// Workers: one that does its work, one that dead-letters loads (and
	// runs their replays), one slow tracked task that reports progress.
	replayed := make(chan string, 16)
	startConsumer(t, b.js, func(context.Context, *jetworker.Task) error { return nil },
		consumer.Config{Durable: "work", FilterSubjects: []string{"tasks.work.>"}, Presence: consumer.Presence{TTL: 1500 * time.Millisecond}})
	startConsumer(t, b.js, func(_ context.Context, tk *jetworker.Task) error {
		if tk.Header.Get(jetworker.HeaderReplayedFrom) != "" {
			replayed <- tk.Subject
			return nil
		}
		return jetworker.Permanent(errors.New("broken load"))
	}, consumer.Config{Durable: "loader", FilterSubjects: []string{"tasks.load.>"}, Concurrency: 4})
	step, stopped := make(chan struct{}), make(chan error, 1)
	startConsumer(t, b.js, func(ctx context.Context, tk *jetworker.Task) error {
		if err := jetworker.SetProgress(ctx, 10, "starting"); err != nil {
			return err
		}
		select {
		case <-step:
		case <-ctx.Done():
		}
		if err := jetworker.SetProgress(ctx, 60, "halfway there"); err != nil {
			return err
		}
		<-ctx.Done()
		stopped <- context.Cause(ctx)
		return ctx.Err()
	}, consumer.Config{Durable: "slow", FilterSubjects: []string{"tasks.slow.>"}, Tasks: store, DisablePresence: true})
	// Tracked tasks that succeed, fail for good, or wait an hour to retry.
	startConsumer(t, b.js, func(_ context.Context, tk *jetworker.Task) error {
		switch tk.Subject {
		case "tasks.track.fail":
			return jetworker.Permanent(errors.New("card declined"))
		case "tasks.track.retry":
			return errors.New("gateway timeout")
		}
		return nil
	}, consumer.Config{Durable: "track", FilterSubjects: []string{"tasks.track.>"}, Tasks: store,
		Backoff: func(int, error) time.Duration { return time.Hour }})
	if _, err := consumer.Provision(t.Context(), b.js, consumer.Config{Durable: "idle", FilterSubjects: []string{"tasks.idle.>"}}); err != nil {
		t.Fatal(err)
	}
	b.run(t)

	for i := range 20 {
		publish(fmt.Sprintf("tasks.work.%d", i), nil)
	}
	for i := range 5 {
		publish(fmt.Sprintf("tasks.load.%d.broken", i), nil)
	}
	publish("tasks.load.x.fine", nil)
	dead, _ := dlq.New(b.js, dlq.Config{})
	testutil.Eventually(t, 10*time.Second, func() error {
		if n, err := dead.Count(t.Context(), dlq.Filter{}); err != nil || n != 6 {
			return fmt.Errorf("dead letters: %d %v, want 6", n, err)
		}
		return nil
	})
	plain := publish("tasks.idle.plain", nil)
	tracked := publish("tasks.idle.report", &publisher.PublishOpts{ID: "report-9", Track: true})

	br := newBrowser(t, chrome, 1280, 900, 180*time.Second)

	// Signing in: the dashboard wants the token, a browser is sent to the
	// login form, which turns it into a session cookie and goes on to the
	// page asked for.
	br.open(b.http.URL+"/", `form.login input[name="token"]`)
	if path := eval[string](br, `location.pathname`); path != "/login" {
		t.Errorf("a browser without a session: got %s, want the login page", path)
	}
	br.screenshot("login.png")
	if err := chromedp.Do(br.ctx, chromedp.SendKeys(chromedp.CSS(`form.login input[name="token"]`), "operator-token"),
		chromedp.Click(chromedp.CSS(`form.login button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="chart-throughput"]`))); err != nil {
		t.Fatalf("sign in with the token: %v", err)
	}
	if path := eval[string](br, `location.pathname`); path != "/" {
		t.Errorf("after signing in: got %s, want the overview", path)
	}
	cookies, err := chromedp.Call(br.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == dashboard.SessionCookie {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || strings.Contains(session.Value, "operator-token") {
		t.Errorf("session cookie: got %+v, want an HttpOnly, SameSite=Strict %s that does not carry the token", session, dashboard.SessionCookie)
	}
	if eval[int](br, `document.querySelectorAll('[data-testid="logout"]').length`) != 1 {
		t.Error("signed in with a session: want a sign-out button")
	}

	// The overview leads with charts: the processed series, and the p50
	// and p99 enqueue-to-start latency, are drawn once the sampler has
	// seen the workers' counts grow in consecutive samples.
	br.open(b.http.URL+"/", `[data-testid="chart-throughput"]`)
	testutil.Eventually(t, 20*time.Second, func() error {
		publish("tasks.work.more", nil)
		for _, line := range []string{
			`[data-testid="chart-throughput"] g[data-series="processed"] polyline`,
			`[data-testid="chart-latency"] g[data-series="wait_p50"] polyline`,
			`[data-testid="chart-latency"] g[data-series="wait_p99"] polyline`,
		} {
			if n := eval[int](br, fmt.Sprintf(`document.querySelectorAll(%q).length`, line)); n == 0 {
				return fmt.Errorf("no line %s yet", line)
			}
		}
		return nil
	})
	if last := eval[string](br, `document.querySelector('[data-testid="legend-wait_p50"] b').textContent`); !strings.HasSuffix(last, "s") {
		t.Errorf("the p50 legend: got %q, want a latency such as 2.5ms", last)
	}
	for _, sel := range []string{`[data-testid="chart-backlog"] g[data-series="pending/TASKS/idle"] polyline`, `[data-testid="chart-wait"] svg`, `[data-testid="legend-processed"]`} {
		if n := eval[int](br, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel)); n == 0 {
			t.Errorf("overview: no %s", sel)
		}
	}
	br.screenshot("overview-charts.png")

	// The reader can pause the refresh.
	br.click(`[data-refresh-toggle]`, `[data-testid="refresh"]`)
	br.waitText(`[data-testid="refresh"] .state`, "paused", is("paused"))
	br.click(`[data-refresh-toggle]`, `[data-testid="refresh"]`)
	br.waitText(`[data-testid="refresh"] .state`, "live", is("live"))

	// And choose the interval: remembered for every page.
	if err := chromedp.Do(br.ctx, chromedp.SetValue(chromedp.CSS(`[data-refresh-every]`), "5000")); err != nil {
		t.Fatal(err)
	}
	eval[bool](br, `document.querySelector("[data-refresh-every]").dispatchEvent(new Event("change", {bubbles: true}))`)
	if got := eval[string](br, `localStorage.getItem("jetworker.refresh-every")`); got != "5000" {
		t.Errorf("refresh interval stored: got %q, want 5000", got)
	}
	br.open(b.http.URL+"/workers", `[data-testid="refresh"]`)
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := eval[string](br, `(s => s.value + " " + s.options[s.selectedIndex].textContent)(document.querySelector("[data-refresh-every]"))`); got != "5000 5s" {
			return fmt.Errorf("the interval shown on the next page: got %q, want 5000 5s", got)
		}
		return nil
	})
	br.open(b.http.URL+"/", `[data-testid="chart-throughput"]`)

	// Dark mode follows the system setting.
	if _, err := chromedp.Call(br.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatal(err)
	}
	if bg := eval[string](br, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(15, 19, 26)" {
		t.Errorf("body background in dark mode: got %s, want rgb(15, 19, 26)", bg)
	}
	if bg := eval[string](br, `getComputedStyle(document.querySelector("figure.chart")).backgroundColor`); bg != "rgb(23, 28, 38)" {
		t.Errorf("chart background in dark mode: got %s, want rgb(23, 28, 38)", bg)
	}
	br.screenshot("overview-dark.png")
	if _, err := chromedp.Call(br.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}}); err != nil {
		t.Fatal(err)
	}
	if bg := eval[string](br, `getComputedStyle(document.body).backgroundColor`); bg != "rgb(246, 247, 249)" {
		t.Errorf("body background in light mode: got %s, want rgb(246, 247, 249)", bg)
	}

	// At 420px nothing is wider than the screen: not the page, not the nav.
	if _, err := chromedp.Call(br.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 420, Height: 900, DeviceScaleFactor: 1, Mobile: true}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/tasks", "/dead-letters", "/workers", "/schedules", "/outbox", fmt.Sprintf("/tasks/ref/TASKS/%d", plain.Sequence)} {
		br.open(b.http.URL+path, `[data-testid="nav"]`)
		for _, el := range []string{"document.documentElement", "document.body", `document.querySelector("[data-testid=nav]")`} {
			if w := eval[[]int](br, fmt.Sprintf(`[%[1]s.scrollWidth, %[1]s.clientWidth]`, el)); w[0] > w[1] {
				t.Errorf("%s at 420px: %s is %dpx wide in %dpx", path, el, w[0], w[1])
			}
		}
		if path == "/" {
			br.screenshot("overview-phone.png")
		}
	}
	if _, err := chromedp.Call(br.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 1280, Height: 900, DeviceScaleFactor: 1}); err != nil {
		t.Fatal(err)
	}

	// From here on the pages hold still: a refresh swaps the live region
	// every 300ms, which can remove a node between finding and clicking
	// it. Pausing is remembered for every page.
	eval[bool](br, `localStorage.setItem("jetworker.refresh-paused", "1"), true`)

	// Dead letters: filter by a subject wildcard, page with the cursor.
	br.open(b.http.URL+"/dead-letters", `[data-testid="filter-subject"]`)
	br.waitText(`[data-testid="refresh"] .state`, "paused", is("paused"))
	if err := chromedp.Do(br.ctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="filter-subject"]`), "tasks.load.*.broken"),
		chromedp.Click(chromedp.CSS(`[data-testid="filter-apply"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="dl-describe"]`))); err != nil {
		t.Fatalf("filter dead letters: %v", err)
	}
	rows := func() []string {
		return eval[[]string](br, `Array.from(document.querySelectorAll("#live tbody tr td.mono")).map(td => td.textContent.trim())`)
	}
	var subjects []string
	for pageNo := 1; ; pageNo++ {
		got := rows()
		if len(got) == 0 || len(got) > 2 {
			t.Fatalf("page %d: got rows %v, want 1 or 2 (DeadLetterLimit 2)", pageNo, got)
		}
		subjects = append(subjects, got...)
		if pageNo == 1 {
			br.screenshot("dead-letters-filtered.png")
		}
		if eval[int](br, `document.querySelectorAll('[data-testid="older"]').length`) == 0 {
			break
		}
		before := eval[string](br, `location.search`)
		br.click(`[data-testid="older"]`, `[data-testid="dl-describe"]`)
		testutil.Eventually(t, 5*time.Second, func() error {
			if eval[string](br, `location.search`) == before {
				return errors.New("still on the same page")
			}
			return nil
		})
	}
	if len(subjects) != 5 {
		t.Errorf("paged through %v, want the 5 broken loads", subjects)
	}
	for _, s := range subjects {
		if !strings.HasSuffix(s, ".broken") {
			t.Errorf("listed %s, which tasks.load.*.broken does not match", s)
		}
	}

	// Replay everything matching: the confirmation names the count.
	br.click(`[data-testid="replay-matching"]`, `[data-testid="confirm-question"]`)
	br.waitText(`[data-testid="confirm-question"]`, "the count and the filter", is("Replay 5 dead letters matching subject tasks.load.*.broken?"))
	br.screenshot("dead-letters-confirm.png")
	br.click(`[data-testid="confirm-bulk"]`, `.flash`)
	br.waitText(`.flash.ok`, "replayed 5 of 5", func(s string) bool { return strings.HasPrefix(s, "Replayed 5 of 5 dead letters.") })
	for range 5 {
		select {
		case <-replayed:
		case <-br.ctx.Done():
			t.Fatal("the replayed tasks were not all run")
		}
	}
	if n, _ := dead.Count(t.Context(), dlq.Filter{}); n != 1 {
		t.Errorf("dead letters after replaying the matching ones: %d, want 1 (tasks.load.x.fine)", n)
	}

	// The task-ID filter: one dead letter of the task with that ID.
	for _, id := range []string{"load-a", "load-b"} {
		publish("tasks.load.id."+id, &publisher.PublishOpts{ID: id})
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n, err := dead.Count(t.Context(), dlq.Filter{}); err != nil || n != 3 {
			return fmt.Errorf("dead letters: %d %v, want 3", n, err)
		}
		return nil
	})
	br.open(b.http.URL+"/dead-letters", `[data-testid="filter-task-id"]`)
	if err := chromedp.Do(br.ctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="filter-task-id"]`), "load-b"),
		chromedp.Click(chromedp.CSS(`[data-testid="filter-apply"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="dl-describe"]`))); err != nil {
		t.Fatalf("filter dead letters by task ID: %v", err)
	}
	if got := rows(); len(got) != 1 || got[0] != "tasks.load.id.load-b" {
		t.Errorf("dead letters of task load-b: got %v, want [tasks.load.id.load-b]", got)
	}
	br.waitText(`[data-testid="dl-describe"]`, "the filter in words", func(s string) bool { return strings.Contains(s, "task ID load-b") })
	br.screenshot("dead-letters-task-id.png")

	// The time range: none failed in the coming hour; the quick range of
	// the last 15 minutes shows all three.
	br.open(b.http.URL+"/dead-letters", `[data-testid="filter-since"]`)
	later := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05")
	if err := chromedp.Do(br.ctx, chromedp.SetValue(chromedp.CSS(`[data-testid="filter-since"]`), later),
		chromedp.Click(chromedp.CSS(`[data-testid="filter-apply"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="dl-empty"]`))); err != nil {
		t.Fatalf("filter dead letters by time: %v", err)
	}
	br.waitText(`[data-testid="dl-empty"]`, "nothing matches", func(s string) bool { return strings.HasPrefix(s, "No dead letters match failed since") })
	br.click(`[data-testid="range-15m"]`, `[data-testid="dl-describe"]`)
	if got, want := eval[string](br, `document.querySelector('[data-testid="filter-since"]').value`), time.Now().Add(-15*time.Minute).UTC().Format("2006-01-02T15:04"); !strings.HasPrefix(got, want[:len("2006-01-02T15")]) {
		t.Errorf("the 15m range's since: got %q, want about %s", got, want)
	}
	testutil.Eventually(t, 5*time.Second, func() error { // two per page (DeadLetterLimit 2), then the older link
		if n := len(rows()); n != 2 || br.count(`[data-testid="older"]`) != 1 {
			return fmt.Errorf("the last 15 minutes: %d rows, want 2 and an older page", n)
		}
		return nil
	})

	// Ticking dead letters and deleting the selection asks with its count.
	ids, err := dead.List(t.Context(), dlq.Filter{Subject: "tasks.load.id.*"}, 0, 10)
	if err != nil || len(ids.Entries) != 2 {
		t.Fatalf("dead letters of load-a and load-b: %v, %v", ids.Entries, err)
	}
	br.open(b.http.URL+"/dead-letters", `[data-testid="bulk-delete"]`)
	for _, e := range ids.Entries {
		br.click(fmt.Sprintf(`input[name="seq"][value="%d"]`, e.Sequence), `[data-testid="bulk-delete"]`)
	}
	if n := br.count(`input[name="seq"]:checked`); n != 2 {
		t.Errorf("ticked: %d, want 2", n)
	}
	br.drainDialogs()
	br.click(`[data-testid="bulk-delete"]`, `.flash`)
	br.dialog("bulk delete", is("Delete 2 selected dead letters for good?"))
	br.waitText(`.flash.ok`, "deleted 2 of 2", is("Deleted 2 of 2 dead letters."))
	if n, _ := dead.Count(t.Context(), dlq.Filter{}); n != 1 {
		t.Errorf("dead letters after deleting the selection: %d, want 1 (tasks.load.x.fine)", n)
	}
	br.screenshot("dead-letters-deleted.png")

	// The task browser lists an untracked and a tracked pending task.
	br.open(b.http.URL+"/tasks", fmt.Sprintf(`[data-testid="queued-%d"]`, plain.Sequence))
	br.waitText(fmt.Sprintf(`[data-testid="status-%d"]`, plain.Sequence), "pending", is("pending"))
	br.waitText(fmt.Sprintf(`[data-testid="status-%d"]`, tracked.Sequence), "pending", is("pending"))
	br.waitText(`[data-testid="tracked-report-9"]`, "a link to the tracked task", is("report-9"))
	br.screenshot("tasks.png")

	// Filtered by a subject wildcard and paged (50 a page).
	for i := range 53 {
		publish(fmt.Sprintf("tasks.idle.page.%d", i), nil)
	}
	if err := chromedp.Do(br.ctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="task-subject"]`), "tasks.idle.page.*"),
		chromedp.Click(chromedp.CSS(`[data-testid="task-find"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="tasks-older"]`))); err != nil {
		t.Fatalf("filter tasks by subject: %v", err)
	}
	queued := `#live tbody tr[data-testid^="queued-"] td:nth-child(3)`
	listed := br.texts(queued)
	br.click(`[data-testid="tasks-older"]`, `#live tbody`)
	testutil.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(eval[string](br, `location.search`), "before=") {
			return errors.New("still on the first page")
		}
		return nil
	})
	listed = append(listed, br.texts(queued)...)
	seen := map[string]bool{}
	for _, subj := range listed {
		if !strings.HasPrefix(subj, "tasks.idle.page.") {
			t.Errorf("listed %s, which tasks.idle.page.* does not match", subj)
		}
		seen[subj] = true
	}
	if len(listed) != 53 || len(seen) != 53 {
		t.Errorf("paged through %d tasks (%d different), want the 53 published", len(listed), len(seen))
	}
	if br.count(`[data-testid="tasks-older"]`) != 0 {
		t.Error("the last page has an older link")
	}

	// Delete on a pending task removes it.
	doomed := publish("tasks.idle.doomed", nil)
	br.open(b.http.URL+"/tasks", fmt.Sprintf(`[data-testid="delete-%d"]`, doomed.Sequence))
	br.drainDialogs()
	br.click(fmt.Sprintf(`[data-testid="delete-%d"]`, doomed.Sequence), `.flash`)
	br.dialog("delete a pending task", func(s string) bool {
		return strings.HasPrefix(s, fmt.Sprintf("Delete the pending task #%d (tasks.idle.doomed)", doomed.Sequence))
	})
	br.waitText(`.flash.ok`, "removed", is(fmt.Sprintf("Task TASKS/%d removed from its stream: it will not run.", doomed.Sequence)))
	if n := br.count(fmt.Sprintf(`[data-testid="queued-%d"]`, doomed.Sequence)); n != 0 {
		t.Error("the deleted task is still listed")
	}
	if st, err := b.js.Stream(t.Context(), "TASKS"); err != nil {
		t.Fatal(err)
	} else if _, err := st.GetMsg(t.Context(), doomed.Sequence); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("the deleted task in its stream: got %v, want it gone", err)
	}

	// The Delayed tab, and Run now on a delayed task.
	later1 := publish("tasks.idle.later", &publisher.PublishOpts{Delay: time.Hour})
	br.click(`[data-testid="task-tabs"] a[href*="state=delayed"]`, fmt.Sprintf(`[data-testid="run-now-%d"]`, later1.Sequence))
	br.screenshot("tasks-delayed.png")
	br.drainDialogs()
	br.click(fmt.Sprintf(`[data-testid="run-now-%d"]`, later1.Sequence), `.flash`)
	br.dialog("run a delayed task now", func(s string) bool { return strings.HasPrefix(s, "Run tasks.idle.later") })
	br.waitText(`.flash.ok`, "released", func(s string) bool { return strings.HasPrefix(s, "Released now as TASKS/") })
	if n := br.count(fmt.Sprintf(`[data-testid="queued-%d"]`, later1.Sequence)); n != 0 {
		t.Error("the released task is still delayed")
	}
	br.waitText(`[data-testid="tasks-empty"]`, "no delayed task left", func(s string) bool { return strings.HasPrefix(s, "No delayed tasks") })

	// Succeeded, Failed and Retrying list tracked tasks' records.
	for _, tt := range []struct{ subj, id string }{{"tasks.track.ok", "ok-1"}, {"tasks.track.fail", "fail-1"}, {"tasks.track.retry", "retry-1"}} {
		publish(tt.subj, &publisher.PublishOpts{ID: tt.id, Track: true})
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		for id, want := range map[string]task.State{"ok-1": task.Succeeded, "fail-1": task.Failed, "retry-1": task.Retrying} {
			if info, err := store.Get(t.Context(), id); err != nil || info.State != want {
				return fmt.Errorf("%s: %s %v, want %s", id, info.State, err, want)
			}
		}
		return nil
	})
	for _, tab := range []struct{ state, id string }{{"succeeded", "ok-1"}, {"failed", "fail-1"}, {"retrying", "retry-1"}} {
		br.click(fmt.Sprintf(`[data-testid="task-tabs"] a[href*="state=%s"]`, tab.state), fmt.Sprintf(`[data-testid="record-%s"]`, tab.id))
		if n := br.count(`#live tbody tr[data-testid^="record-"]`); n != 1 {
			t.Errorf("the %s tab lists %d records, want only %s", tab.state, n, tab.id)
		}
		br.screenshot("tasks-" + tab.state + ".png")
	}

	// The outbox page.
	br.open(b.http.URL+"/outbox", `[data-testid="outbox-dead-7"]`)
	br.waitText(`#live [data-testid="outbox-pending"]`, "3 pending rows", is("3"))
	br.waitText(`[data-testid="outbox-dead-7"] td:nth-child(2)`, "the dead row's task ID", is("lost-1"))
	br.screenshot("outbox.png")

	// A running tracked task's page updates live, then cancel stops it.
	publish("tasks.slow.render", &publisher.PublishOpts{ID: "slow-1", Track: true})
	br.open(b.http.URL+"/tasks/slow-1", `[data-testid="task"]`)
	br.waitText(`[data-testid="task-progress-message"]`, "the first progress report", is("starting"))
	eval[bool](br, `window.__loadedOnce = true`)
	close(step)
	br.waitText(`[data-testid="task-progress-message"]`, "the second report, live", is("halfway there"))
	br.waitText(`[data-testid="task-percent"]`, "60%", is("60%"))
	if !eval[bool](br, `window.__loadedOnce === true`) {
		t.Error("the task page reloaded to show progress; want it updated in place")
	}
	br.waitText(`[data-testid="task-state"]`, "active", is("active"))
	br.screenshot("task-live.png")
	br.click(`[data-testid="cancel"]`, `.flash`)
	select {
	case cause := <-stopped:
		if !errors.Is(cause, task.ErrCancelled) {
			t.Errorf("handler stopped by %v, want task.ErrCancelled", cause)
		}
	case <-br.ctx.Done():
		t.Fatal("cancel from the page did not stop the handler")
	}
	br.waitText(`[data-testid="task-state"]`, "cancelled", is("cancelled"))
	br.screenshot("task-cancelled.png")
	select {
	case msg := <-br.dialogs:
		if !strings.HasPrefix(msg, "Cancel task slow-1?") {
			t.Errorf("cancel confirmation: got %q, want it to name the task", msg)
		}
	default:
		t.Error("cancel did not ask for confirmation")
	}
}
