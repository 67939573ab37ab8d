package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/payload"
	"github.com/jetworker/jetworker/task"
)

// taskEnv configures "jetworker task".
type taskEnv struct {
	Base
	StreamEnv
	TaskStoreEnv
	// Replicas matters when this command is the first to use the bucket.
	ReplicasEnv
}

// taskOpts are the options of one "jetworker task" call.
type taskOpts struct {
	State   []string      `flag:"state" meta:"STATES" desc:"ls: only tasks in these states, comma-separated: scheduled, pending, active, retrying, succeeded, failed, cancelled"`
	Subject string        `flag:"subject" meta:"FILTER" desc:"ls: only tasks whose subject matches this (wildcards: tasks.email.>)"`
	Limit   int           `flag:"limit" desc:"ls: at most this many, newest first"`
	Before  string        `flag:"before" meta:"CURSOR" desc:"ls: only tasks older than this cursor (ls prints the cursor of the next page)"`
	Queued  bool          `flag:"queued" desc:"ls: list the tasks stored in the task stream (--stream), tracked or not, instead of the records"`
	Delayed bool          `flag:"delayed" desc:"ls: list the task stream's delayed tasks, waiting for their release (implies --queued)"`
	Ref     string        `flag:"ref" meta:"STREAM/SEQ" desc:"cancel: the task stored there, tracked or not, instead of a task ID"`
	Timeout time.Duration `flag:"timeout" desc:"wait: give up after this long (0: wait until the task ends)"`
	JSON    bool          `flag:"json" desc:"print JSON"`
}

// Exit codes of "jetworker task wait" beyond the usual ones.
const (
	exitTaskFailed    = 3
	exitTaskCancelled = 4
	exitTaskTimeout   = 5
)

const taskSynopsis = ` get|wait|cancel|ls|run-now [args]`

const taskAbout = `
Look at and steer tasks: tracked tasks by their ID (published with
tracking, or run by a worker that tracks every task), and any task by its
place in the task stream, STREAM/SEQ.

  get ID                 show a tracked task: state, attempts, worker, times,
                         last error, progress, result and history
  wait ID [--timeout D]  wait until the task ends, then show it
  cancel ID              cancel a tracked task: removed if it has not started,
                         stopped if it runs
  cancel --ref STREAM/SEQ
                         remove a task waiting in its stream, tracked or not,
                         and stop a worker running it
  ls                     list tracked tasks, the most recently updated first
                         (--state, --subject, --limit, --before)
  ls --queued            list the tasks waiting in the task stream, tracked or
                         not (--delayed: the delayed ones; --subject, --limit)
  run-now STREAM/SEQ     release a delayed task now

Exit codes: 0 done, 1 an error (no such task, NATS), 2 a usage error. wait
exits 0 when the task succeeded, 3 when it failed (dead-lettered), 4 when
it was cancelled, and 5 when --timeout passed first.`

func runTask(ctx context.Context, std *stdio, args []string) error {
	var env taskEnv
	opts := taskOpts{Limit: task.DefaultPageSize}
	c := newCLI("task", taskSynopsis, taskAbout).options("Tasks", &opts).env(&env)
	pos, err := c.parse(std, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("missing subcommand: get, wait, cancel, ls or run-now")
	}
	sub, rest := pos[0], pos[1:]
	var (
		id     string
		stream string
		seq    uint64
	)
	switch sub {
	case "get", "wait":
		if len(rest) != 1 {
			return usagef("%s takes one task ID", sub)
		}
		id = rest[0]
	case "cancel":
		switch {
		case opts.Ref == "" && len(rest) == 1:
			id = rest[0]
		case opts.Ref != "" && len(rest) == 0:
			if stream, seq, err = parseTaskRef("--ref", opts.Ref); err != nil {
				return err
			}
		default:
			return usagef("cancel takes one task ID, or --ref STREAM/SEQ")
		}
	case "ls":
		if len(rest) != 0 {
			return usagef("ls takes no arguments: filter with --state and --subject")
		}
	case "run-now":
		if len(rest) != 1 {
			return usagef("run-now takes one STREAM/SEQ")
		}
		if stream, seq, err = parseTaskRef("run-now", rest[0]); err != nil {
			return err
		}
	default:
		return usagef("unknown task subcommand %q: want get, wait, cancel, ls or run-now", inert(sub))
	}
	var ls taskListing
	if sub == "ls" {
		if ls, err = opts.listing(); err != nil {
			return err
		}
	}
	if opts.Timeout < 0 {
		return usagef("--timeout must not be negative")
	}
	tcfg := env.taskConfig(env.ReplicasEnv, nil)
	if err := tcfg.Validate(); err != nil {
		return inTermsOf(err, "task", "", taskFields)
	}

	log, conn, err := env.open(ctx, std, "task")
	if err != nil {
		return err
	}
	defer conn.Close()
	tcfg.Logger = log
	store, err := task.New(conn.js, tcfg)
	if err != nil {
		return err
	}
	notFound := func(err error) error {
		if errors.Is(err, task.ErrNotFound) {
			return fmt.Errorf("task %s not found in %s (not tracked, or its record expired after --task-ttl)", id, env.TaskBucket)
		}
		return err
	}

	switch sub {
	case "get":
		info, err := store.Get(ctx, id)
		if err != nil {
			return notFound(err)
		}
		return showTask(std, info, opts.JSON)
	case "wait":
		return waitTask(ctx, std, store, id, opts, notFound)
	case "cancel":
		if id == "" {
			return cancelRef(ctx, std, store, stream, seq, opts.JSON)
		}
		return cancelTask(ctx, std, store, id, env.TaskBucket, opts.JSON)
	case "ls":
		return listTasks(ctx, std, store, env.Stream, ls, opts.JSON)
	default: // run-now
		ref, err := store.RunNow(ctx, stream, seq)
		if err != nil {
			return err
		}
		if opts.JSON {
			return printJSON(std, map[string]string{"ref": ref, "delayed_ref": jetworker.Ref(stream, seq)})
		}
		fmt.Fprintf(std.out, "released delayed task %s now as %s\n", inert(jetworker.Ref(stream, seq)), inert(ref))
		return nil
	}
}

// parseTaskRef reads a STREAM/SEQ reference.
func parseTaskRef(what, ref string) (string, uint64, error) {
	stream, seq, ok := jetworker.ParseRef(ref)
	if !ok {
		return "", 0, usagef("%s %q: want STREAM/SEQ, a task's place in its stream (task ls --queued lists them)", what, inert(ref))
	}
	return stream, seq, nil
}

// taskListing is what "task ls" lists.
type taskListing struct {
	records task.Filter       // tracked tasks, unless queued
	queued  bool              // from the stream
	stream  task.QueuedFilter // with queued
	before  uint64
	limit   int
}

// listing maps the ls options to the filters, checking them.
func (o taskOpts) listing() (taskListing, error) {
	l := taskListing{queued: o.Queued || o.Delayed, limit: o.Limit}
	if o.Limit < 1 {
		return l, usagef("--limit must be at least 1, got %d", o.Limit)
	}
	if o.Before != "" {
		n, err := strconv.ParseUint(o.Before, 10, 64)
		if err != nil || n == 0 {
			return l, usagef("--before %q: want the cursor ls printed, a positive number", inert(o.Before))
		}
		l.before = n
	}
	if o.Subject != "" {
		if err := validateFilter(o.Subject); err != nil {
			return l, usagef("--subject %q: %v", inert(o.Subject), err)
		}
	}
	if l.queued {
		if len(o.State) > 0 {
			return l, usagef("--state selects tracked tasks' records; --queued lists the stream, which holds pending and delayed tasks only")
		}
		l.stream = task.QueuedFilter{Delayed: o.Delayed, Subject: o.Subject}
		return l, nil
	}
	l.records.Subject = o.Subject
	for _, s := range o.State {
		st := task.State(strings.ToLower(s))
		if !st.Valid() {
			all := task.States()
			names := make([]string, len(all))
			for i, v := range all {
				names[i] = string(v)
			}
			return l, usagef("--state %q: want %s", inert(s), strings.Join(names, ", "))
		}
		l.records.States = append(l.records.States, st)
	}
	return l, nil
}

// waitTask waits for the task to end and shows it; the error's exit code
// says how it ended.
func waitTask(ctx context.Context, std *stdio, store *task.Store, id string, opts taskOpts, notFound func(error) error) error {
	wctx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	info, err := store.Wait(wctx, id)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && info.ID != "" {
			if err := showTask(std, info, opts.JSON); err != nil {
				return err
			}
			return &codeError{code: exitTaskTimeout, err: fmt.Errorf("task %s is still %s after %s", id, info.State, opts.Timeout)}
		}
		return notFound(err)
	}
	if err := showTask(std, info, opts.JSON); err != nil {
		return err
	}
	switch info.State {
	case task.Failed:
		return &codeError{code: exitTaskFailed, err: fmt.Errorf("task %s failed: %s", id, info.LastError)}
	case task.Cancelled:
		return &codeError{code: exitTaskCancelled, err: fmt.Errorf("task %s was cancelled", id)}
	}
	return nil
}

// cancelOutcome is what cancel did, also as JSON.
type cancelOutcome struct {
	Message string     `json:"message"`
	Task    *task.Info `json:"task,omitempty"`
	Ref     string     `json:"ref,omitempty"`
	Removed *bool      `json:"removed,omitempty"`
}

func cancelTask(ctx context.Context, std *stdio, store *task.Store, id, bucket string, asJSON bool) error {
	info, err := store.Cancel(ctx, id)
	switch {
	case errors.Is(err, task.ErrFinished):
		return fmt.Errorf("task %s already %s: nothing to cancel", id, info.State)
	case errors.Is(err, task.ErrNotFound):
		return fmt.Errorf("task %s not found in %s (not tracked, or its record expired); a worker running a task with this ID is told to stop all the same. An untracked task waiting in its stream: cancel --ref STREAM/SEQ", id, bucket)
	case err != nil:
		return err
	}
	name := inert(id)
	var msg string
	switch info.State {
	case task.Cancelled:
		msg = fmt.Sprintf("task %s cancelled before it ran: %s removed from its stream", name, inert(info.Ref))
	case task.Active:
		msg = fmt.Sprintf("cancel requested: task %s is running (attempt %d on %s); the worker stops it within a second and ends it cancelled",
			name, info.Attempt, inert(info.Worker))
	default:
		msg = fmt.Sprintf("cancel requested: task %s is %s; the worker that receives it ends it cancelled without running it", name, info.State)
	}
	if asJSON {
		info = withHistory(info)
		return printJSON(std, cancelOutcome{Message: msg, Task: &info})
	}
	fmt.Fprintln(std.out, msg)
	return nil
}

func cancelRef(ctx context.Context, std *stdio, store *task.Store, stream string, seq uint64, asJSON bool) error {
	removed, err := store.CancelRef(ctx, stream, seq)
	if err != nil {
		return err
	}
	ref := jetworker.Ref(stream, seq)
	msg := fmt.Sprintf("task %s removed from its stream: it will not run", inert(ref))
	if !removed {
		msg = fmt.Sprintf("task %s was not removed: a worker has it, or it ended; a worker running it is told to stop", inert(ref))
	}
	if asJSON {
		return printJSON(std, cancelOutcome{Message: msg, Ref: ref, Removed: &removed})
	}
	fmt.Fprintln(std.out, msg)
	return nil
}

// listTasks prints tracked tasks, or the tasks queued in stream, newest
// first, up to the listing's limit, and the cursor of the next page.
func listTasks(ctx context.Context, std *stdio, store *task.Store, stream string, l taskListing, asJSON bool) error {
	var (
		records = []task.Info{}
		queued  = []task.Queued{}
		next    = l.before
	)
	for {
		n := min(task.MaxPageSize, l.limit-len(records)-len(queued))
		if l.queued {
			page, err := store.Queued(ctx, stream, l.stream, next, n)
			if err != nil {
				return err
			}
			queued, next = append(queued, page.Tasks...), page.Next
		} else {
			page, err := store.List(ctx, l.records, next, n)
			if err != nil {
				return err
			}
			records, next = append(records, page.Tasks...), page.Next
		}
		if next == 0 || len(records)+len(queued) >= l.limit {
			break
		}
	}
	more := func() {
		if next != 0 {
			fmt.Fprintf(std.out, "more: add --before %d\n", next)
		}
	}
	if asJSON {
		if next != 0 {
			// Standard output holds the JSON list alone.
			fmt.Fprintf(std.err, "more: add --before %d\n", next)
		}
		if l.queued {
			return printJSON(std, queued)
		}
		for i := range records {
			records[i] = withHistory(records[i])
		}
		return printJSON(std, records)
	}
	tw := tabwriter.NewWriter(std.out, 2, 4, 2, ' ', 0)
	if l.queued {
		when := "STORED"
		if l.stream.Delayed {
			when = "RUN AT"
		}
		fmt.Fprintf(tw, "REF\t%s\tSUBJECT\tTASK\tTRACKED\tSIZE\n", when)
		for _, q := range queued {
			at := q.Stored
			if q.Delayed {
				at = q.RunAt
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d B\n", inert(q.Ref), formatLocal(at), inert(q.Subject), inert(dash(q.ID)), yesNo(q.Tracked), q.Size)
		}
		_ = tw.Flush()
		what := "queued"
		if l.stream.Delayed {
			what = "delayed"
		}
		fmt.Fprintf(std.out, "%s in %s\n", tasksCount(len(queued), what+" task"), inert(stream))
		more()
		return nil
	}
	fmt.Fprintln(tw, "UPDATED\tSTATE\tATTEMPT\tSUBJECT\tTASK\tDETAIL")
	for _, t := range records {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", formatLocal(t.Updated), inert(string(t.State)), attempts(t), inert(t.Subject), inert(t.ID), taskDetail(t))
	}
	_ = tw.Flush()
	fmt.Fprintln(std.out, tasksCount(len(records), "tracked task"))
	more()
	return nil
}

// taskDetail is the one-line gist of a task in a list: its error, its
// progress, or when it is due.
func taskDetail(t task.Info) string {
	var parts []string
	if t.CancelRequested && !t.State.Terminal() {
		parts = append(parts, "cancel requested")
	}
	switch {
	case t.LastError != "" && t.State != task.Succeeded:
		parts = append(parts, excerpt(t.LastError, 60))
	case t.Progress != nil && t.State == task.Active:
		parts = append(parts, excerpt(progressText(*t.Progress), 60))
	case t.State == task.Scheduled && !t.RunAt.IsZero():
		parts = append(parts, "due "+formatLocal(t.RunAt))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// showTask prints a task's record: as JSON, exact, or for a person.
func showTask(std *stdio, t task.Info, asJSON bool) error {
	if asJSON {
		return printJSON(std, withHistory(t))
	}
	w := std.out
	state := inert(string(t.State)) // a record is data anyone with write access to the bucket can shape
	if t.CancelRequested && !t.State.Terminal() {
		state += " (cancel requested)"
	}
	fmt.Fprintf(w, "Task:       %s\n", inert(t.ID))
	fmt.Fprintf(w, "Subject:    %s\n", inert(t.Subject))
	fmt.Fprintf(w, "State:      %s\n", state)
	fmt.Fprintf(w, "Attempt:    %s\n", attemptText(t))
	if t.Worker != "" {
		fmt.Fprintf(w, "Worker:     %s\n", inert(t.Worker))
	}
	if t.Ref != "" {
		fmt.Fprintf(w, "Stored as:  %s\n", inert(t.Ref))
	}
	if !t.RunAt.IsZero() {
		fmt.Fprintf(w, "Run at:     %s\n", formatLocal(t.RunAt))
	}
	if t.Unique != "" {
		fmt.Fprintf(w, "Unique:     %s\n", inert(t.Unique))
	}
	if t.Generation > 0 {
		fmt.Fprintf(w, "Replayed:   %d time(s) from the dead letters\n", t.Generation)
	}
	fmt.Fprintf(w, "Created:    %s\n", formatLocal(t.Created))
	fmt.Fprintf(w, "Updated:    %s\n", formatLocal(t.Updated))
	if t.LastError != "" {
		fmt.Fprintf(w, "Last error: %s\n", inert(t.LastError))
	}
	if t.Progress != nil {
		fmt.Fprintf(w, "Progress:   %s (%s)\n", inert(progressText(*t.Progress)), formatLocal(t.Progress.At))
	}
	if len(t.Result) > 0 {
		text, enc := resultText(t.Result)
		fmt.Fprintf(w, "Result (%d bytes, %s):\n%s\n", len(t.Result), enc, text)
	}
	fmt.Fprintln(w, "History:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, h := range t.History {
		cells := []string{"  " + formatLocal(h.At), inert(string(h.State)), "", inert(h.Worker), inert(h.Error)}
		if h.Attempt > 0 {
			cells[2] = fmt.Sprintf("attempt %d", h.Attempt)
		}
		for len(cells) > 2 && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1] // no trailing padding
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// attemptText says which attempt the record is at, and of how many.
func attemptText(t task.Info) string {
	switch {
	case t.Attempt == 0 && t.MaxAttempts > 0:
		return fmt.Sprintf("none yet (at most %d)", t.MaxAttempts)
	case t.Attempt == 0:
		return "none yet"
	case t.MaxAttempts > 0:
		return fmt.Sprintf("%d of %d", t.Attempt, t.MaxAttempts)
	}
	return strconv.Itoa(t.Attempt)
}

// attempts is attemptText for a table: "2/5", "2", "-".
func attempts(t task.Info) string {
	switch {
	case t.Attempt == 0:
		return "-"
	case t.MaxAttempts > 0:
		return fmt.Sprintf("%d/%d", t.Attempt, t.MaxAttempts)
	}
	return strconv.Itoa(t.Attempt)
}

// progressText is "40% rendering page 4 of 10".
func progressText(p task.Progress) string {
	s := strconv.FormatFloat(p.Percent, 'f', -1, 64) + "%"
	if p.Message != "" {
		s += " " + p.Message
	}
	return s
}

// resultText shows a result for a person: indented JSON when it is JSON,
// text when it is other UTF-8, base64 otherwise; and which it is.
func resultText(b []byte) (string, string) {
	text, enc := payload.Text(b)
	if enc == payload.EncodingBase64 {
		return text, enc
	}
	return inertText(text), enc
}

// withHistory gives a record without transitions an empty history, so its
// JSON lists [] rather than null.
func withHistory(t task.Info) task.Info {
	if t.History == nil {
		t.History = []task.Transition{}
	}
	return t
}

// tasksCount says "1 task", "3 tasks", "no tasks".
func tasksCount(n int, what string) string {
	switch n {
	case 0:
		return "no " + what + "s"
	case 1:
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
