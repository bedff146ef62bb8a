package location_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/siplab/siplab/sip/location"
)

// TestLocationHTTPErrors: a broken or misaddressed service must not look
// like "unknown user" (a proxy would answer 404 for a user who exists).
func TestLocationHTTPErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr error
	}{
		{"server error", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, `{"error":"boom"}`, 500) }, location.ErrService},
		{"404 without error body", http.NotFound, location.ErrService},
		{"garbage", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>")) }, location.ErrService},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c := &location.HTTPClient{BaseURL: srv.URL, HTTP: &http.Client{Timeout: 5 * time.Second}}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := c.Lookup(ctx, "alice")
			if !errors.Is(err, tt.wantErr) || errors.Is(err, location.ErrUnknownUser) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
