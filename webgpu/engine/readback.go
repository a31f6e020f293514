//go:build js && wasm

package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"syscall/js"
	"time"

	"github.com/ember-llm/ember/jsbridge"
	"github.com/ember-llm/ember/webgpu"
)

// Sampled ids come back in batches. Each decode step copies its 16-byte
// result (id first) into a slot of an id batch buffer; a batch is mapped once
// all its slots are submitted (or when a caller needs an id early), and all
// its ids are then read with one mapAsync. Under Deno every mapAsync costs
// the pipeline about a millisecond of GPU idle time (host recording no longer
// overlaps the GPU's work while a map is pending), so one map per step held
// decode near 1/(GPU time + host time); one map per 8 steps hides the host
// time again (docs/PERFORMANCE.md, "Engine and H200").
//
// A batch's ids reach the caller together, so a batch is sized to cover
// about batchTargetMS of generation (at most Lookahead/2 steps): text still
// streams smoothly where steps are slow (a small GPU at 20 tok/s maps every
// step), and fast GPUs get the long batches. The steps kept in flight follow
// (depth).

// idSlot names slot j of id batch b.
type idSlot struct{ b, j int }

// idBatch is one MAP_READ buffer holding the results of up to per steps.
type idBatch struct {
	buf    bufferRef
	cap    int      // slots it will hand out (≤ the engine's idPer)
	alone  bool     // closed early for an id wanted at once (a prompt's)
	used   int      // slots handed out
	closed bool     // no more slots: mapped (or about to be)
	mapped js.Value // the mapAsync promise once closed
	read   bool     // ids holds the buffer's contents
	ids    []uint32 // 4 words per slot
	refs   int      // flights that have not taken their id yet
}

// batchTargetMS is the generation time one id batch should cover.
const batchTargetMS = 40

// readbackBatch is the size of the next id batch: the steps that take about
// batchTargetMS at stepMS each (1 while the step time is unknown), between 1
// and max.
func readbackBatch(stepMS float64, max int) int {
	if stepMS <= 0 {
		return 1
	}
	return int(math.Max(1, math.Min(float64(max), math.Floor(batchTargetMS/stepMS))))
}

// depth is how many greedy steps to keep in flight: two batches' worth (one
// running while the other is read), at most Lookahead. Where steps are slow
// that is 2, so a reply that ends (end of text, a stop string) leaves
// little speculative work behind for the next request to wait out.
func (e *Engine) depth() int {
	if e.fixedBatch > 0 {
		return e.lookahead
	}
	return min(e.lookahead, max(2, 2*readbackBatch(e.stepMS, e.idPer)))
}

// newIDBatches allocates n batches of up to per slots.
func (e *Engine) newIDBatches(n, per int) error {
	e.idPer = per
	e.openBatch = -1
	for i := 0; i < n; i++ {
		r, err := e.bufferUsage(fmt.Sprintf("id readback %d", i), int64(16*per), webgpu.BufferMapRead|webgpu.BufferCopyDst)
		if err != nil {
			return err
		}
		e.idBatches = append(e.idBatches, &idBatch{buf: r, ids: make([]uint32, 4*per)})
		e.freeBatches = append(e.freeBatches, i)
	}
	return nil
}

// canTakeSlot reports whether a step can get a readback slot now.
func (e *Engine) canTakeSlot() bool { return e.openBatch >= 0 || len(e.freeBatches) > 0 }

// takeSlot hands out the next slot of the open batch, opening a free one
// when needed (callers check canTakeSlot; a drained engine always can).
func (e *Engine) takeSlot() idSlot {
	if e.openBatch < 0 {
		n := len(e.freeBatches) - 1
		e.openBatch, e.freeBatches = e.freeBatches[n], e.freeBatches[:n]
		b := e.idBatches[e.openBatch]
		b.cap = readbackBatch(e.stepMS, e.idPer)
		if e.fixedBatch > 0 {
			b.cap = e.fixedBatch
		}
	}
	b := e.idBatches[e.openBatch]
	s := idSlot{b: e.openBatch, j: b.used}
	b.used++
	b.refs++
	return s
}

// submitted is called after the step owning slot s is submitted (or failed
// to be: ok false). A full batch is mapped; alone closes it regardless, so
// that a step whose id is wanted at once (a prefill) does not wait for the
// steps queued after it.
func (e *Engine) submitted(s idSlot, ok, alone bool) {
	b := e.idBatches[s.b]
	if !ok {
		b.refs--
	}
	if alone || b.used == b.cap {
		b.alone = alone
		e.closeBatch(s.b)
	}
}

// closeBatch maps batch i (all its used slots are submitted).
func (e *Engine) closeBatch(i int) {
	b := e.idBatches[i]
	if b.closed {
		return
	}
	b.closed = true
	if e.openBatch == i {
		e.openBatch = -1
	}
	if b.refs == 0 {
		e.recycle(i)
		return
	}
	p, err := jsbridge.Call(e.bufs[b.buf].JS(), "mapAsync", 1, 0, 16*b.used)
	if err != nil {
		p = js.Global().Get("Promise").Call("reject", err.Error())
	}
	// A batch dropped by Close is never awaited: mark the rejection handled
	// so that the runtime does not report (Deno: exit on) it.
	p.Call("catch", ignoreRejection)
	b.mapped = p
}

func (e *Engine) recycle(i int) {
	b := e.idBatches[i]
	b.used, b.closed, b.read, b.refs, b.alone, b.mapped = 0, false, false, 0, false, js.Undefined()
	e.freeBatches = append(e.freeBatches, i)
}

var ignoreRejection = js.FuncOf(func(js.Value, []js.Value) any { return nil })

// finishMap returns flight f's result (id first), waiting for its batch's
// map. The wait ignores ctx: a buffer must not be reused while its map is
// pending.
func (e *Engine) finishMap(ctx context.Context, f flight) (uint32, error) {
	b := e.idBatches[f.slot.b]
	defer func() {
		b.refs--
		if b.refs == 0 && b.closed {
			e.recycle(f.slot.b)
		}
	}()
	if !b.read {
		e.closeBatch(f.slot.b)
		if err := e.readBatch(ctx, b); err != nil {
			return 0, err
		}
	}
	if errs := e.dev.TakeUncapturedErrors(); len(errs) > 0 {
		return 0, fmt.Errorf("engine: GPU error: %w", errors.Join(errs...))
	}
	return b.ids[4*f.slot.j], ctx.Err()
}

func (e *Engine) readBatch(ctx context.Context, b *idBatch) error {
	rb := e.bufs[b.buf]
	if _, err := jsbridge.Await(context.WithoutCancel(ctx), b.mapped); err != nil {
		if lerr := e.dev.Err(); lerr != nil {
			return lerr
		}
		return fmt.Errorf("engine: read the sampled ids: %w", err)
	}
	n := uint64(16 * b.used)
	r, err := rb.GetMappedRange(0, n)
	if err == nil {
		_, err = jsbridge.CopyToGo(jsbridge.AsBytes(b.ids[:4*b.used]), r)
	}
	rb.Unmap()
	b.read = err == nil
	e.timeStep(b.used, b.alone)
	return err
}

// timeStep updates the step-time estimate from the interval between two
// batch reads of steady decoding (steps ids in this one). The read of a
// prompt's id (alone) starts a new interval without being a sample, and
// pauses of the caller (over a second) are not samples either.
func (e *Engine) timeStep(steps int, alone bool) {
	now := time.Now()
	if !alone && !e.lastRead.IsZero() && steps > 0 {
		if dt := float64(now.Sub(e.lastRead).Microseconds()) / 1000; dt < 1000 {
			x := dt / float64(steps)
			if e.stepMS == 0 {
				e.stepMS = x
			} else {
				e.stepMS = 0.5*e.stepMS + 0.5*x
			}
		}
	}
	e.lastRead = now
}
