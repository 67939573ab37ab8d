package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/jetworker/jetworker"
	"github.com/jetworker/jetworker/handlers/webhook"
)

// Example delivers a task to a receiver that verifies the signature
// before trusting the request.
func Example() {
	const secret = "shared-secret"

	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), body, 5*time.Minute); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		fmt.Printf("received %s (attempt %s): %s\n",
			r.Header.Get(webhook.HeaderSubject), r.Header.Get(webhook.HeaderDelivered), body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	h, err := webhook.New(webhook.Config{URL: receiver.URL, Secret: secret})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = h.Handle(context.Background(), &jetworker.Task{
		Subject: "tasks.order.paid", Data: []byte(`{"order":42}`), Delivered: 1,
	})
	fmt.Println("result:", err)

	// A receiver with another secret refuses the request with 401, which
	// is permanent: retrying cannot fix a wrong secret.
	wrong, _ := webhook.New(webhook.Config{URL: receiver.URL, Secret: "wrong"})
	err = wrong.Handle(context.Background(), &jetworker.Task{Subject: "tasks.order.paid", Data: []byte(`{}`)})
	fmt.Println("permanent:", jetworker.IsPermanent(err))
	// Output:
	// received tasks.order.paid (attempt 1): {"order":42}
	// result: <nil>
	// permanent: true
}
