package handlers

import (
	"context"
	"fmt"
	"reflect"

	"github.com/jetworker/jetworker"
)

// JSONOptions tunes [JSON]. A nil *JSONOptions means the defaults.
type JSONOptions struct {
	// DisallowUnknownFields makes a payload with an object key that
	// matches no field of the destination type a decode failure.
	// Defaults to false: unknown keys are ignored, so producers can add
	// fields before consumers know them.
	DisallowUnknownFields bool
}

// JSON adapts a typed function to a [jetworker.Handler]: it decodes the
// task's payload as JSON into a fresh T and calls fn with it. A payload
// that cannot be decoded (malformed, trailing data, or an unknown field
// when opts.DisallowUnknownFields is set) fails with a
// [jetworker.Permanent] error that names the type and contains the decode
// error, so it is dead-lettered and never retried; fn is not called.
// fn's own result is returned unchanged.
//
// JSON panics if fn is nil. The returned Handler is safe for concurrent
// use if fn is.
func JSON[T any](fn func(ctx context.Context, t *jetworker.Task, v T) error, opts *JSONOptions) jetworker.Handler {
	if fn == nil {
		panic("handlers: JSON: nil function")
	}
	var o JSONOptions
	if opts != nil {
		o = *opts
	}
	codec := jetworker.JSONCodec{DisallowUnknownFields: o.DisallowUnknownFields}
	typeName := reflect.TypeFor[T]().String()
	return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		var v T
		if err := codec.Unmarshal(t.Data, &v); err != nil {
			return jetworker.Permanent(fmt.Errorf("decode %s payload of subject %q: %w", typeName, t.Subject, err))
		}
		return fn(ctx, t, v)
	})
}
