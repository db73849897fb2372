package gate

import (
	"testing"
	"time"
)

// The gate's cost per request, on the way in and out, with nobody waiting: the path every
// request takes on a backend that keeps up. Reproduce: go test -run '^$' -bench . -benchmem ./gateway/gate/
func BenchmarkAcquireDone(b *testing.B) {
	for _, bb := range []struct {
		name string
		o    Options
	}{
		{"fixed", Options{Limit: 1000}},
		{"adaptive", Options{}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			g, err := New(bb.o)
			if err != nil {
				b.Fatal(err)
			}
			r := Request{Deadline: time.Now().Add(time.Hour)}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s, err := g.Acquire(b.Context(), r)
					if err != nil {
						b.Fatal(err)
					}
					s.FirstByte(false)
					s.Done()
				}
			})
		})
	}
}
