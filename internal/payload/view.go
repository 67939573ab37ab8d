package payload

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"
)

// Encodings of a payload shown by [View] and [Text].
const (
	EncodingJSON   = "json"   // the payload is JSON
	EncodingText   = "text"   // UTF-8 text that is not JSON
	EncodingBase64 = "base64" // anything else, shown base64-encoded
)

// View returns p as a value to embed in a JSON document, and its
// encoding: p itself when it is JSON, a JSON string of it when it is
// other UTF-8 text, a JSON string of its standard base64 otherwise; nil
// and "" when p is empty.
func View(p []byte) (json.RawMessage, string) {
	switch {
	case len(p) == 0:
		return nil, ""
	case json.Valid(p):
		return json.RawMessage(p), EncodingJSON
	case utf8.Valid(p):
		b, _ := json.Marshal(string(p))
		return b, EncodingText
	}
	b, _ := json.Marshal(base64.StdEncoding.EncodeToString(p))
	return b, EncodingBase64
}

// Text returns p for a person to read, and its encoding: JSON indented,
// other UTF-8 text as it is, anything else in standard base64. It does not
// escape control characters; a terminal printer must.
func Text(p []byte) (string, string) {
	if json.Valid(p) {
		var buf bytes.Buffer
		if json.Indent(&buf, p, "", "  ") == nil {
			return buf.String(), EncodingJSON
		}
	}
	if utf8.Valid(p) {
		return string(p), EncodingText
	}
	return base64.StdEncoding.EncodeToString(p), EncodingBase64
}
