package llama

import (
	"runtime"
	"sync/atomic"
)

// pool runs a function on a fixed set of helper goroutines and the caller,
// the way OpenMP runs a parallel loop: helpers spin for a while after each
// job before parking, so the many short matrix-vector products of one token
// (about 7 per layer) do not each pay a goroutine wake-up, which costs more
// than the work itself on small models.
type pool struct {
	helpers  int
	gen      atomic.Uint64 // job generation; a new value starts a job
	fn       func(w int)   // the job; nil between jobs
	left     atomic.Int64  // helpers still running the job
	sleeping []atomic.Bool
	wake     []chan struct{}
	stop     atomic.Bool
}

// spinLimit bounds how long an idle helper polls before parking (tens of
// microseconds): longer than the gap between two matmuls of a token.
const spinLimit = 1 << 15

func newPool(helpers int) *pool {
	p := &pool{helpers: helpers, sleeping: make([]atomic.Bool, helpers), wake: make([]chan struct{}, helpers)}
	for i := range helpers {
		p.wake[i] = make(chan struct{}, 1)
		go p.worker(i)
	}
	return p
}

func (p *pool) worker(i int) {
	seen := uint64(0)
	for {
		spins := 0
		for p.gen.Load() == seen && !p.stop.Load() {
			spins++
			if spins%64 == 0 {
				runtime.Gosched()
			}
			if spins < spinLimit {
				continue
			}
			p.sleeping[i].Store(true)
			if p.gen.Load() == seen && !p.stop.Load() {
				<-p.wake[i]
			}
			p.sleeping[i].Store(false)
			spins = 0
		}
		if p.stop.Load() {
			return
		}
		seen = p.gen.Load()
		p.fn(i + 1)
		p.left.Add(-1)
	}
}

// run calls fn(0) on the caller and fn(1..helpers) on the helpers, and
// returns when all have returned.
func (p *pool) run(fn func(w int)) {
	p.fn = fn
	p.left.Store(int64(p.helpers))
	p.gen.Add(1)
	p.wakeAll()
	fn(0)
	for spins := 1; p.left.Load() > 0; spins++ {
		if spins%64 == 0 {
			runtime.Gosched()
		}
	}
	p.fn = nil
}

func (p *pool) wakeAll() {
	for i := range p.helpers {
		if p.sleeping[i].Load() {
			select {
			case p.wake[i] <- struct{}{}:
			default:
			}
		}
	}
}

// close ends the helpers (they exit once they see it).
func (p *pool) close() {
	p.stop.Store(true)
	p.wakeAll()
}

// poolHolder lets a cleanup stop the helpers of a Model that was dropped
// without Close (the helpers never reference the Model).
type poolHolder struct{ p *pool }

func (h *poolHolder) set(p *pool) {
	if h.p != nil {
		h.p.close()
	}
	h.p = p
}
