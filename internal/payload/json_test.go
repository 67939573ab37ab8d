package payload_test

import (
	"strings"
	"testing"

	"github.com/jetworker/jetworker/internal/payload"
)

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	type doc struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name    string
		strict  bool
		data    string
		wantErr string
	}{
		{name: "valid", data: `{"name":"x"}`},
		{name: "unknown field allowed when lenient", data: `{"name":"x","extra":1}`},
		{name: "unknown field refused when strict", strict: true, data: `{"name":"x","extra":1}`, wantErr: `unknown field "extra"`},
		{name: "malformed", data: `{"name":`, wantErr: "json decode"},
		{name: "trailing data", data: `{"name":"x"} {}`, wantErr: "trailing data"},
		{name: "wrong type", data: `{"name":3}`, wantErr: "cannot unmarshal number"},
		{name: "empty", data: ``, wantErr: "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var d doc
			err := payload.DecodeJSON([]byte(tt.data), &d, tt.strict)
			if tt.wantErr == "" {
				if err != nil || d.Name != "x" {
					t.Fatalf("got %+v, %v; want name x, nil", d, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
