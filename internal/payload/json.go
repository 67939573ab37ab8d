// Package payload decodes task payloads for the typed handler adapters and
// the stock handlers, with one set of rules: a JSON document, nothing
// after it, and optionally no unknown object keys.
package payload

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// DecodeJSON decodes the JSON document in data into v, a pointer. Trailing
// data after the document is an error; with strict, so is an object key
// that matches no field of the destination.
func DecodeJSON(data []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("json decode: %w", err)
	}
	if dec.More() {
		return errors.New("json decode: trailing data after the document")
	}
	return nil
}
