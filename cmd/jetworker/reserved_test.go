package main_test

import (
	"strings"
	"testing"

	"github.com/jetworker/jetworker/embedded/embeddedtest"
)

// TestCommandsRefuseSystemSubjects: no command publishes to, or saves a
// schedule firing into, the server's reserved subjects (the commands that
// purged TASKS and deleted the DLQ), and nothing changes on the server.
func TestCommandsRefuseSystemSubjects(t *testing.T) {
	t.Parallel()
	srv, env := natsEnv(t)
	_, js := embeddedtest.Connect(t, srv)
	if _, err := js.Publish(t.Context(), "tasks.keep", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"$JS.API.STREAM.PURGE.TASKS", "$JS.API.STREAM.DELETE.DLQ", "$KV.jetworker_schedules.x", "$SYS.REQ.SERVER.PING", "_INBOX.x", "$x"} {
		for _, args := range [][]string{
			{"publish", subj, ""},
			{"schedule", "add", "pwn", "--spec", "@every 1h", "--subject", subj, "--paused"},
		} {
			r := jw(t, env, "", args...)
			if r.code == 0 || !strings.Contains(r.stderr, "reserved subject") {
				t.Errorf("jetworker %s: exit %d, stderr %q; want a refusal naming the reserved subject", strings.Join(args, " "), r.code, r.stderr)
			}
		}
	}
	if r := jw(t, env, "", "schedule", "trigger", "pwn"); r.code == 0 {
		t.Errorf("trigger of a refused schedule: exit 0, %q", r.stdout)
	}
	for name, want := range map[string]uint64{"TASKS": 1, "DLQ": 0} {
		st, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatalf("stream %s after the attempts: %v", name, err)
		}
		if got := st.CachedInfo().State.Msgs; got != want {
			t.Errorf("stream %s holds %d messages, want %d", name, got, want)
		}
	}
}
