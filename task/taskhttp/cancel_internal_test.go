package taskhttp

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/jetworker/jetworker/task"
)

// TestCancelOutcome covers the race the HTTP tests cannot force: the task
// finishing between Cancel's read of the record and its write, which
// Cancel reports with no error and the final state.
func TestCancelOutcome(t *testing.T) {
	t.Parallel()
	unavailable := errors.New("nats: timeout")
	for _, tc := range []struct {
		name    string
		info    task.Info
		err     error
		code    int
		wantErr error
	}{
		{"requested while running", task.Info{State: task.Active, CancelRequested: true}, nil, http.StatusAccepted, nil},
		{"done while pending", task.Info{State: task.Cancelled}, nil, http.StatusAccepted, nil},
		{"finished before", task.Info{State: task.Succeeded}, fmt.Errorf("%w: %q is succeeded", task.ErrFinished, "x"), http.StatusConflict, task.ErrFinished},
		{"succeeded while Cancel ran", task.Info{State: task.Succeeded}, nil, http.StatusConflict, task.ErrFinished},
		{"failed while Cancel ran", task.Info{State: task.Failed}, nil, http.StatusConflict, task.ErrFinished},
		{"the store unavailable", task.Info{}, unavailable, 0, unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, err := cancelOutcome("x", tc.info, tc.err)
			if code != tc.code || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("got %d %v, want %d %v", code, err, tc.code, tc.wantErr)
			}
		})
	}
}

func TestEncodeResult(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, raw, encoding string
	}{
		{`{"a": 1}`, `{"a": 1}`, EncodingJSON},
		{`"quoted"`, `"quoted"`, EncodingJSON},
		{`42`, `42`, EncodingJSON},
		{"plain text", `"plain text"`, EncodingText},
		{"line\nbreak", `"line\nbreak"`, EncodingText},
		{"\xff\xfe", `"//4="`, EncodingBase64},
	} {
		raw, enc := encodeResult([]byte(tc.in))
		if string(raw) != tc.raw || enc != tc.encoding {
			t.Errorf("%q: got %s (%s), want %s (%s)", tc.in, raw, enc, tc.raw, tc.encoding)
		}
		back, err := Status{Result: raw, ResultEncoding: enc}.ResultBytes()
		if err != nil || string(back) != tc.in {
			t.Errorf("%q: ResultBytes %q, %v", tc.in, back, err)
		}
	}
	if raw, enc := encodeResult(nil); raw != nil || enc != "" {
		t.Errorf("no result: got %s (%s), want none", raw, enc)
	}
}
