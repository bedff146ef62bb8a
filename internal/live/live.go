// Package live holds a daemon's live settings so that hot paths read them
// without a lock: an immutable value behind an atomic pointer, replaced
// whole by the (rare, serialised) writers. Every RTP packet of an SBC or
// PBX call reads the latching mode; a mutex there is paid 50 times a
// second per stream and contends with the other streams' readers.
package live

import (
	"sync"
	"sync/atomic"
)

// Value is a T read lock-free and changed by copy-and-swap. The zero
// Value holds T's zero value. T must be a plain value (no pointers or
// maps shared with the caller): readers get copies.
type Value[T any] struct {
	p  atomic.Pointer[T]
	mu sync.Mutex // serialises writers, so no change is lost
}

// Load returns the current value; it never blocks.
func (v *Value[T]) Load() T {
	if p := v.p.Load(); p != nil {
		return *p
	}
	var zero T
	return zero
}

// Store replaces the value.
func (v *Value[T]) Store(x T) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.p.Store(&x)
}

// Update applies f to a copy of the current value and publishes the copy
// if f returns nil; on error the value is unchanged. It returns the value
// now in force and f's error. f runs under the writers' lock: it must not
// call Store or Update on v.
func (v *Value[T]) Update(f func(*T) error) (T, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	next := v.Load()
	if err := f(&next); err != nil {
		return v.Load(), err
	}
	v.p.Store(&next)
	return next, nil
}

// Restore puts initial back and returns the names, in the order given,
// whose values get formats differently in the value it replaced: what a
// daemon's reset reports as restored.
func (v *Value[T]) Restore(initial T, names []string, get func(T, string) (string, error)) []string {
	var changed []string
	v.Update(func(cur *T) error {
		for _, n := range names {
			a, _ := get(*cur, n)
			b, _ := get(initial, n)
			if a != b {
				changed = append(changed, n)
			}
		}
		*cur = initial
		return nil
	})
	return changed
}
