package console

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Event is one Server-Sent Event: a name and its JSON data.
type Event struct {
	Name string
	Data []byte
}

// Hub fans the poller's events out to every browser. It keeps the last
// event of each name so a browser that connects (or reconnects) draws the
// current state at once. A browser too slow to take an event loses its
// stream (EventSource reconnects and gets the last state again): one slow
// laptop never holds back the others or the poller.
type Hub struct {
	mu      sync.Mutex
	last    map[string]Event
	order   []string
	clients map[chan Event]struct{}
}

// NewHub is an empty hub.
func NewHub() *Hub {
	return &Hub{last: map[string]Event{}, clients: map[chan Event]struct{}{}}
}

// Publish sends an event to every browser and keeps it for late comers.
func (h *Hub) Publish(name string, data []byte) { h.PublishDelta(name, data, data) }

// PublishDelta keeps full for late comers and sends delta, what changed
// since the last event of that name, to the browsers connected: a browser
// that connects gets the last full event, then every delta after it (the
// hub's lock orders the two).
func (h *Hub) PublishDelta(name string, full, delta []byte) {
	e := Event{Name: name, Data: delta}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.last[name]; !ok {
		h.order = append(h.order, name)
	}
	h.last[name] = Event{Name: name, Data: full}
	for c := range h.clients {
		select {
		case c <- e:
		default:
			delete(h.clients, c)
			close(c)
		}
	}
}

// Last is the last event published under name.
func (h *Hub) Last(name string) (Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.last[name]
	return e, ok
}

// Clients is the number of browsers connected.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *Hub) subscribe() (chan Event, []Event) {
	c := make(chan Event, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients[c] = struct{}{}
	var now []Event
	for _, n := range h.order {
		now = append(now, h.last[n])
	}
	return c, now
}

func (h *Hub) unsubscribe(c chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c)
	}
}

// ServeHTTP is the /events stream.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "console: streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	c, now := h.subscribe()
	defer h.unsubscribe(c)
	fmt.Fprint(w, "retry: 1000\n\n")
	for _, e := range now {
		writeEvent(w, e)
	}
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case e, ok := <-c:
			if !ok {
				return
			}
			writeEvent(w, e)
			// Take what else is queued before flushing: one write for a
			// burst.
			for more := true; more; {
				select {
				case e, ok := <-c:
					if !ok {
						fl.Flush()
						return
					}
					writeEvent(w, e)
				default:
					more = false
				}
			}
			fl.Flush()
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
		}
	}
}

// writeEvent writes one event; JSON data holds no newline (encoding/json
// escapes them), so it is one data line.
func writeEvent(w http.ResponseWriter, e Event) {
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Name, e.Data)
}
