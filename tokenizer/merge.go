package tokenizer

import (
	"math"
	"slices"
)

// merger is the merge loop shared by the SentencePiece and byte-level BPE
// encoders: a doubly linked list of symbols and a priority queue of
// candidate merges of adjacent symbols. The encoders keep what a symbol is
// (a piece id, a span of text) in their own slices, indexed like the list,
// and supply only how a pair ranks and what merging does to it.
type merger struct {
	links []mergeLink
	queue []mergeCand
	steps int32 // merges done so far
}

type mergeLink struct {
	prev, next int32 // neighbours, -1 at the ends
	changed    int32 // merge step at which the symbol last changed
}

// mergeCand is a queued merge of the adjacent symbols left and right.
type mergeCand struct {
	key   uint64 // rank<<32 | left: the smallest merges first, the leftmost winning ties
	right int32
	step  int32 // merge step when queued: stale once either symbol has changed since
}

// reset starts a list of n symbols, 0 to n-1, with an empty queue.
func (mg *merger) reset(n int) {
	mg.links = slices.Grow(mg.links[:0], n)[:n]
	for i := range mg.links {
		mg.links[i] = mergeLink{prev: int32(i - 1), next: int32(i + 1)}
	}
	if n > 0 {
		mg.links[n-1].next = -1
	}
	mg.queue = mg.queue[:0]
	mg.steps = 0
}

// next returns the symbol after i, -1 after the last.
func (mg *merger) next(i int32) int32 { return mg.links[i].next }

// push queues merging left with the next symbol, right. Lower ranks merge
// first.
func (mg *merger) push(rank uint32, left, right int32) {
	mg.queue = append(mg.queue, mergeCand{key: uint64(rank)<<32 | uint64(uint32(left)), right: right, step: mg.steps})
	q := mg.queue
	i := len(q) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if q[i].key >= q[parent].key {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (mg *merger) pop() mergeCand {
	q := mg.queue
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	i := 0
	for {
		l, r, best := 2*i+1, 2*i+2, i
		if l < len(q) && q[l].key < q[best].key {
			best = l
		}
		if r < len(q) && q[r].key < q[best].key {
			best = r
		}
		if best == i {
			break
		}
		q[i], q[best] = q[best], q[i]
		i = best
	}
	mg.queue = q
	return top
}

// run queues every adjacent pair through pair, which calls push for those
// that may merge, then merges the best pair until none is left: merge folds
// symbol right into left, and the new neighbours of left are offered to pair.
func (mg *merger) run(pair func(left, right int32), merge func(left, right int32)) {
	for i := 1; i < len(mg.links); i++ {
		pair(int32(i-1), int32(i))
	}
	for len(mg.queue) > 0 {
		c := mg.pop()
		left, right := int32(uint32(c.key)), c.right
		l, r := &mg.links[left], &mg.links[right]
		if l.changed > c.step || r.changed > c.step {
			// Stale: left was merged into its own left neighbour, or either
			// has absorbed a symbol since. Either way, if the two are still
			// there the pair was queued again when they changed.
			continue
		}
		merge(left, right)
		mg.steps++
		l.changed, r.changed = mg.steps, mg.steps
		l.next = r.next
		if r.next >= 0 {
			mg.links[r.next].prev = left
		}
		if l.prev >= 0 {
			pair(l.prev, left)
		}
		if l.next >= 0 {
			pair(left, l.next)
		}
	}
}

// scoreRank maps a piece score to a rank for push: higher scores get lower
// ranks, and equal scores (-0 and +0 included) equal ranks.
func scoreRank(score float32) uint32 {
	if score == 0 {
		score = 0 // -0 ranks as +0
	}
	b := math.Float32bits(score)
	if b&(1<<31) != 0 {
		return b // negative: a larger magnitude (a lower score) has larger bits
	}
	return ^b &^ (1 << 31) // non-negative: below every negative, larger scores lower
}
