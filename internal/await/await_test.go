package await

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var errMissing = errors.New("not there yet")

func TestUntil(t *testing.T) {
	other := errors.New("broken")
	tests := []struct {
		name    string
		results []error // what find returns, call by call; the last repeats
		wait    time.Duration
		wantErr error
		calls   int // at least
	}{
		{"found at once", []error{nil}, time.Second, nil, 1},
		{"found on the third try", []error{errMissing, errMissing, nil}, 5 * time.Second, nil, 3},
		{"another error ends it", []error{errMissing, other}, 5 * time.Second, other, 2},
		{"never there", []error{errMissing}, 500 * time.Millisecond, errMissing, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			start := time.Now()
			v, err := Until(context.Background(), tc.wait, errMissing, func() (int, error) {
				calls++
				return calls, tc.results[min(calls, len(tc.results))-1]
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if calls < tc.calls || v != calls {
				t.Fatalf("%d calls, value %d; want at least %d calls and the last value", calls, v, tc.calls)
			}
			if tc.wantErr == errMissing {
				if !strings.Contains(err.Error(), "waited 500ms") {
					t.Errorf("error %q does not say how long it waited", err)
				}
				if d := time.Since(start); d < tc.wait {
					t.Errorf("gave up after %s, before %s", d, tc.wait)
				}
			}
		})
	}
}

func TestUntilStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if _, err := Until(ctx, time.Minute, errMissing, func() (int, error) { return 0, errMissing }); !errors.Is(err, errMissing) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a cancelled context waited %s", d)
	}
}
