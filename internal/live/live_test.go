package live

import (
	"errors"
	"sync"
	"testing"
)

type settings struct {
	Mode string
	N    int
}

func TestUpdateSwapsWholeValues(t *testing.T) {
	var v Value[settings]
	if got := v.Load(); got != (settings{}) {
		t.Fatalf("zero Value holds %+v", got)
	}
	v.Store(settings{Mode: "learn"})
	bad := errors.New("bad value")
	got, err := v.Update(func(s *settings) error { s.Mode = "half-written"; return bad })
	if !errors.Is(err, bad) || got.Mode != "learn" || v.Load().Mode != "learn" {
		t.Fatalf("failed update: got %+v, %v; value %+v", got, err, v.Load())
	}
	// Concurrent writers lose nothing; readers only ever see whole values
	// (Mode and N are written together).
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			s := v.Load()
			if (s.N == 0) != (s.Mode == "learn") {
				t.Errorf("torn read %+v", s)
				return
			}
		}
	})
	var writers sync.WaitGroup
	for range 8 {
		writers.Go(func() {
			for range 100 {
				v.Update(func(s *settings) error { s.N++; s.Mode = "off"; return nil })
			}
		})
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	if got := v.Load().N; got != 800 {
		t.Fatalf("after 800 updates N = %d", got)
	}
}
