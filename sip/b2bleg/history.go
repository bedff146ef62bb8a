package b2bleg

import "slices"

// Remember appends a new call to a B2BUA's call list and keeps the list at
// most max long by dropping the oldest ended calls: status pages show
// recent history, but a busy lab must not grow it without bound. Calls
// still up are never dropped, so the list may exceed max while they last.
func Remember[C any](calls []C, c C, max int, ended func(C) bool) []C {
	calls = append(calls, c)
	for len(calls) > max {
		i := slices.IndexFunc(calls, ended)
		if i < 0 {
			break
		}
		calls = slices.Delete(calls, i, i+1)
	}
	return calls
}
