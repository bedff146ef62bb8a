package sipnet

import (
	"context"
	"errors"
	"fmt"

	"github.com/emiago/sipgo/sip"
)

var (
	// ErrNoFinalResponse: the transaction ended (timeout, transport error)
	// without a final response.
	ErrNoFinalResponse = errors.New("sipnet: no final response")
	// ErrStopped: the caller's stop channel closed while waiting.
	ErrStopped = errors.New("sipnet: stopped while waiting for a response")
)

// FinalResponse waits for the final response of a client transaction,
// skipping provisional ones. It returns ErrNoFinalResponse (wrapping the
// transaction's error) when the transaction ends without one, ctx.Err()
// when ctx ends, and ErrStopped when stop closes (an element shutting down).
func FinalResponse(ctx context.Context, tx sip.ClientTransaction, stop <-chan struct{}) (*sip.Response, error) {
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrNoFinalResponse, err)
			}
			return nil, ErrNoFinalResponse
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-stop:
			return nil, ErrStopped
		}
	}
}
