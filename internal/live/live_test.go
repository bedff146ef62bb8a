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

func TestRestoreReportsChangedNames(t *testing.T) {
	var v Value[settings]
	initial := settings{Mode: "learn", N: 1}
	v.Store(settings{Mode: "off", N: 1})
	get := func(s settings, name string) (string, error) {
		switch name {
		case "mode":
			return s.Mode, nil
		case "n":
			return string(rune('0' + s.N)), nil
		}
		return "", errors.New("unknown")
	}
	if got := v.Restore(initial, []string{"mode", "n"}, get); len(got) != 1 || got[0] != "mode" {
		t.Fatalf("restored %v, want [mode]", got)
	}
	if v.Load() != initial {
		t.Fatalf("after Restore: %+v", v.Load())
	}
	if got := v.Restore(initial, []string{"mode", "n"}, get); len(got) != 0 {
		t.Fatalf("second Restore reported %v", got)
	}
}
