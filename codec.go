package jetworker

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Codec turns task payload values into bytes and back. The publisher's
// typed helpers and the handlers package's typed adapters use one.
// Implementations must be safe for concurrent use.
type Codec interface {
	// Marshal encodes v.
	Marshal(v any) ([]byte, error)
	// Unmarshal decodes data into v, which is a pointer.
	Unmarshal(data []byte, v any) error
}

// JSONCodec is the default [Codec]: encoding/json. Its zero value accepts
// unknown fields; set DisallowUnknownFields to reject them.
type JSONCodec struct {
	// DisallowUnknownFields makes Unmarshal fail on object keys that do
	// not match a field of the destination.
	DisallowUnknownFields bool
}

var _ Codec = JSONCodec{}

// Marshal encodes v as JSON.
func (JSONCodec) Marshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("json encode: %w", err)
	}
	return b, nil
}

// Unmarshal decodes the JSON document in data into v. Trailing data after
// the document is an error.
func (c JSONCodec) Unmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if c.DisallowUnknownFields {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("json decode: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("json decode: trailing data after the document")
	}
	return nil
}
