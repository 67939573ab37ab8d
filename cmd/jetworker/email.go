package main

import (
	"errors"

	"github.com/jetworker/jetworker"
)

// emailHandler builds the stock email handler of a route.
func emailHandler(r emailRoute) (jetworker.Handler, error) {
	return nil, errors.New("email routes are not built yet")
}
