package location

// VersionHeader carries, on a lookup's answer, the version of the service's
// binding table after the lookup (see Watcher): a cache that has applied
// that version over its watch stream is at least as fresh as the answer.
const VersionHeader = "Siplab-Location-Version"

// Change is one line of GET /v1/watch (newline-delimited JSON).
type Change struct {
	// Version counts the changes the service applied so far; it grows by
	// one per change. A heartbeat line repeats the last version sent.
	Version uint64 `json:"version"`
	// Snapshot marks the first line of a stream: Bindings are all live
	// bindings at Version or later, and replace everything a cache held.
	Snapshot bool `json:"snapshot,omitempty"`
	// AOR is the address-of-record a change is about, and Bindings its
	// whole list after it (none: no binding left). A line with neither
	// Snapshot nor AOR is a heartbeat.
	AOR      string    `json:"aor,omitempty"`
	Bindings []Binding `json:"bindings,omitempty"`
}

// Watcher is implemented by services that can stream their changes (the
// registrar does); NewHandler serves it as GET /v1/watch.
type Watcher interface {
	// Watch subscribes: snap holds every live binding at snap.Version or
	// later, then changes carries, in order, every change with a higher
	// version, each with the AOR's whole list. A change may repeat what the
	// snapshot already holds; applying it again is harmless. The service
	// closes changes when the subscriber falls too far behind; stop
	// unsubscribes.
	Watch() (snap Change, changes <-chan Change, stop func())
	// Version is the number of changes applied so far.
	Version() uint64
}

// Invalidator is implemented by location caches (Cache): the proxy calls
// Invalidate when it relays a 2xx to a REGISTER for aor, so the next lookup
// of aor sees that registration even if the watch stream has not brought
// it yet (read-your-writes).
type Invalidator interface {
	Invalidate(aor string)
}
