package handlers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers"
)

type signup struct {
	Email string `json:"email"`
	Plan  string `json:"plan"`
}

func TestJSON(t *testing.T) {
	t.Parallel()
	errBusy := errors.New("busy")
	tests := []struct {
		name          string
		data          string
		strict        bool
		fnErr         error
		wantCalled    bool
		wantPermanent bool
		wantText      []string // substrings of the error
	}{
		{name: "decodes", data: `{"email":"a@example.com","plan":"pro"}`, wantCalled: true},
		{name: "unknown field accepted by default", data: `{"email":"a@example.com","plan":"pro","extra":1}`, wantCalled: true},
		{name: "unknown field rejected when disallowed", data: `{"email":"a@example.com","plan":"pro","extra":1}`,
			strict: true, wantPermanent: true,
			wantText: []string{"handlers_test.signup", `unknown field "extra"`, `"tasks.signup"`}},
		{name: "malformed", data: `{"email":`, wantPermanent: true,
			wantText: []string{"decode handlers_test.signup payload", "unexpected EOF"}},
		{name: "empty payload", data: ``, wantPermanent: true, wantText: []string{"EOF"}},
		{name: "trailing data", data: `{"email":"a@example.com"} {}`, wantPermanent: true, wantText: []string{"trailing data"}},
		{name: "wrong type", data: `{"email":42}`, wantPermanent: true, wantText: []string{"cannot unmarshal number"}},
		{name: "handler error passes unchanged", data: `{"email":"a@example.com"}`,
			fnErr: jetworker.RetryAfter(errBusy, time.Second), wantCalled: true, wantText: []string{"busy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got *signup
			fn := func(ctx context.Context, t *jetworker.Task, v signup) error {
				got = &v
				return tt.fnErr
			}
			h := handlers.JSON(fn)
			if tt.strict {
				h = handlers.JSONStrict(fn)
			}
			err := h.Handle(t.Context(), &jetworker.Task{Subject: "tasks.signup", Data: []byte(tt.data)})

			if (got != nil) != tt.wantCalled {
				t.Errorf("fn called = %t, want %t", got != nil, tt.wantCalled)
			}
			if got != nil && got.Email != "a@example.com" {
				t.Errorf("decoded email %q, want %q", got.Email, "a@example.com")
			}
			if jetworker.IsPermanent(err) != tt.wantPermanent {
				t.Errorf("IsPermanent(%v) = %t, want %t", err, !tt.wantPermanent, tt.wantPermanent)
			}
			if tt.fnErr != nil && err != tt.fnErr {
				t.Errorf("got %v, want fn's error unchanged", err)
			}
			if tt.fnErr == nil && !tt.wantPermanent && err != nil {
				t.Errorf("got %v, want nil", err)
			}
			for _, s := range tt.wantText {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("got %v, want text containing %q", err, s)
				}
			}
		})
	}
}

func TestJSONPointerType(t *testing.T) {
	t.Parallel()
	var got *signup
	h := handlers.JSON(func(ctx context.Context, t *jetworker.Task, v *signup) error {
		got = v
		return nil
	})
	if err := h.Handle(t.Context(), &jetworker.Task{Data: []byte(`{"plan":"pro"}`)}); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if got == nil || got.Plan != "pro" {
		t.Errorf("got %+v, want plan pro", got)
	}
}

func TestJSONNilFuncPanics(t *testing.T) {
	t.Parallel()
	if got := catchPanic(func() { handlers.JSON[signup](nil) }); !strings.Contains(got, "nil function") {
		t.Errorf("got panic %q, want one about a nil function", got)
	}
}
