package sipnet

import (
	"math"
	"runtime/metrics"
	"time"
)

// The backlog inside the process. With several readers (Config.Readers)
// the socket's queue drains fast even when the daemon is behind: the
// datagrams wait as goroutines (sipgo runs one per message) for a CPU
// instead, where the kernel's arrival stamp does not see them. The Go
// runtime measures that wait (/sched/latencies:seconds, how long
// goroutines were runnable before they ran); the gate adds its median
// over the last schedSample to the queue delay.

const schedSample = 50 * time.Millisecond

const schedMetric = "/sched/latencies:seconds"

// sampleSched stores the median scheduling latency of each schedSample
// into g until done is closed.
func (g *gate) sampleSched(done <-chan struct{}) {
	s := []metrics.Sample{{Name: schedMetric}}
	var prev []uint64
	t := time.NewTicker(schedSample)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindFloat64Histogram {
			return // not in this runtime: the queue delay alone counts
		}
		h := s[0].Value.Float64Histogram()
		g.sched.Store(int64(medianSince(prev, h.Counts, h.Buckets) * float64(time.Second)))
		prev = append(prev[:0], h.Counts...)
	}
}

// medianSince is the median (in seconds, a bucket's upper bound) of what a
// cumulative histogram counted since prev; 0 when it counted nothing.
func medianSince(prev, counts []uint64, buckets []float64) float64 {
	var total uint64
	for i, c := range counts {
		if i < len(prev) {
			c -= prev[i]
		}
		total += c
	}
	if total == 0 {
		return 0
	}
	var seen uint64
	for i, c := range counts {
		if i < len(prev) {
			c -= prev[i]
		}
		seen += c
		if seen*2 >= total {
			if hi := buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return buckets[i]
		}
	}
	return 0
}
