package payload_test

import (
	"testing"

	"github.com/jetworker/jetworker/internal/payload"
)

func TestViewAndText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		in             []byte
		view, text     string
		encoding, tenc string
	}{
		{"empty", nil, "", "", "", payload.EncodingText},
		{"json", []byte(`{"a":1}`), `{"a":1}`, "{\n  \"a\": 1\n}", payload.EncodingJSON, payload.EncodingJSON},
		{"text", []byte("hello\nworld"), `"hello\nworld"`, "hello\nworld", payload.EncodingText, payload.EncodingText},
		{"binary", []byte{0xff, 0x00, 0x01}, `"/wAB"`, "/wAB", payload.EncodingBase64, payload.EncodingBase64},
	} {
		v, enc := payload.View(tc.in)
		if string(v) != tc.view || enc != tc.encoding {
			t.Errorf("%s: View = %s, %q; want %s, %q", tc.name, v, enc, tc.view, tc.encoding)
		}
		text, tenc := payload.Text(tc.in)
		if text != tc.text || tenc != tc.tenc {
			t.Errorf("%s: Text = %q, %q; want %q, %q", tc.name, text, tenc, tc.text, tc.tenc)
		}
	}
}
