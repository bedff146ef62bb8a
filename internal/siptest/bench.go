package siptest

import (
	"runtime"
	"testing"
	"time"
)

// HeapPerRequest measures the heap a daemon keeps per request: it sends
// b.N requests with send(i), every 100 waiting until answered() has caught
// up (no receive-buffer drops), waits for the last answers and then
// settle for late messages, and reports the heap left after GC per
// request as heap-B/req.
func HeapPerRequest(b *testing.B, send func(i int), answered func() int, settle time.Duration) {
	b.Helper()
	wait := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := answered()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d answers", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for i := range b.N {
		send(i)
		if i%100 == 99 {
			wait(i + 1)
		}
	}
	wait(b.N)
	time.Sleep(settle)
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/float64(b.N), "heap-B/req")
}
