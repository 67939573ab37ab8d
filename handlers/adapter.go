package handlers

import (
	"context"
	"fmt"
	"reflect"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/internal/payload"
)

// JSON adapts a typed function to a [jetworker.Handler]: it decodes the
// task's payload as JSON into a fresh T and calls fn with it. Object keys
// that match no field of T are ignored, so producers can add fields before
// consumers know them; use [JSONStrict] to refuse them. A payload that
// cannot be decoded (malformed, or trailing data after the document) fails
// with a [jetworker.Permanent] error that names the type and contains the
// decode error, so it is dead-lettered and never retried; fn is not
// called. fn's own result is returned unchanged.
//
// JSON panics if fn is nil. The returned Handler is safe for concurrent
// use if fn is.
func JSON[T any](fn func(ctx context.Context, t *jetworker.Task, v T) error) jetworker.Handler {
	return jsonHandler(fn, false)
}

// JSONStrict is [JSON] that also refuses, as a permanent decode failure, a
// payload with an object key matching no field of T.
func JSONStrict[T any](fn func(ctx context.Context, t *jetworker.Task, v T) error) jetworker.Handler {
	return jsonHandler(fn, true)
}

func jsonHandler[T any](fn func(ctx context.Context, t *jetworker.Task, v T) error, strict bool) jetworker.Handler {
	if fn == nil {
		panic("handlers: JSON: nil function")
	}
	typeName := reflect.TypeFor[T]().String()
	return jetworker.HandlerFunc(func(ctx context.Context, t *jetworker.Task) error {
		var v T
		if err := payload.DecodeJSON(t.Data, &v, strict); err != nil {
			return jetworker.Permanent(fmt.Errorf("decode %s payload of subject %q: %w", typeName, t.Subject, err))
		}
		return fn(ctx, t, v)
	})
}
