package registrar

import (
	"sync"
	"sync/atomic"

	"github.com/siplab/siplab/sip/location"
)

// watchQueue is how many changes a watcher may lag behind before the
// registrar drops it; it reconnects and starts again from a snapshot.
const watchQueue = 4096

// hub numbers the store's changes and hands them to watchers. publish runs
// under the changed AOR's shard lock, so an AOR's changes are numbered and
// queued in the order they were applied.
type hub struct {
	mu      sync.Mutex
	version atomic.Uint64
	subs    map[chan location.Change]struct{}
}

func newHub() *hub { return &hub{subs: map[chan location.Change]struct{}{}} }

func (h *hub) publish(aor string, list []entry) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.version.Add(1)
	if len(h.subs) == 0 {
		return
	}
	bs := make([]location.Binding, len(list))
	for i, e := range list {
		bs[i] = e.b // entries are never modified in place
	}
	c := location.Change{Version: v, AOR: aor, Bindings: bs}
	for ch := range h.subs {
		select {
		case ch <- c:
		default:
			// Too far behind: a stream with a gap would be wrong, so end
			// it; the watcher resyncs from a snapshot.
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) subscribe() (chan location.Change, uint64) {
	ch := make(chan location.Change, watchQueue)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.subs[ch] = struct{}{}
	return ch, h.version.Load()
}

func (h *hub) unsubscribe(ch chan location.Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

var _ location.Watcher = (*Registrar)(nil)

// Watch implements location.Watcher. The subscription starts before the
// snapshot is read, so no change falls between the two; a change the
// snapshot already shows arrives again and is applied twice, harmlessly.
func (r *Registrar) Watch() (location.Change, <-chan location.Change, func()) {
	ch, v := r.store.watch.subscribe()
	snap := location.Change{Version: v, Snapshot: true, Bindings: r.store.all(r.now())}
	return snap, ch, func() { r.store.watch.unsubscribe(ch) }
}

// Version implements location.Watcher.
func (r *Registrar) Version() uint64 { return r.store.watch.version.Load() }
