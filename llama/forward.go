package llama

import (
	"context"
	"fmt"
	"math"
)

// prefillBlock is the number of prompt tokens processed together: each
// weight matrix is read once per block.
const prefillBlock = 32

// State is the run state: activations for a block of up to B tokens and the
// KV cache, allocated once (the cache grows with the positions used, up to
// the context length).
type State struct {
	B      int
	x      []float32   // (B, dim) residual stream
	xb     []float32   // (B, max(dim, q_dim)) normed input, then attention output
	xb2    []float32   // (B, dim)
	q      []float32   // (B, q_dim)
	hb     []float32   // (B, hidden_dim)
	hb2    []float32   // (B, hidden_dim)
	cos    []float32   // (B, head_dim/2) RoPE of the block's positions
	sin    []float32   // (B, head_dim/2)
	att    [][]float32 // (worker)(positions) attention scores, one buffer per worker
	logits []float32   // (vocab) of the token classified last

	xq   []int8    // quantized activations (B, padded width)
	xs   []float32 // their scales (B, groups of 32)
	xpad []float32 // f32 activations padded like int8 rows (B, padded width)

	keyCache   [][]float32 // (layer)(positions, kv_dim)
	valueCache [][]float32 // (layer)(positions, kv_dim)
	kvCap      int         // positions allocated in each layer's cache
	nLayers    int
	kvDim      int
	maxCtx     int
}

func (s *State) resetCache() {
	s.keyCache, s.valueCache, s.kvCap = nil, nil, 0
}

// grow makes room in the KV cache for positions [0, n).
func (s *State) grow(n int) {
	if n <= s.kvCap {
		return
	}
	c := max(n, 2*s.kvCap, 64)
	c = min(c, s.maxCtx)
	if s.keyCache == nil {
		s.keyCache = make([][]float32, s.nLayers)
		s.valueCache = make([][]float32, s.nLayers)
	}
	for l := range s.keyCache {
		k := make([]float32, c*s.kvDim)
		copy(k, s.keyCache[l])
		s.keyCache[l] = k
		v := make([]float32, c*s.kvDim)
		copy(v, s.valueCache[l])
		s.valueCache[l] = v
	}
	s.kvCap = c
}

func (m *Model) allocState() {
	c := &m.cfg
	s := &m.s
	B := prefillBlock
	s.B = B
	s.x = make([]float32, B*c.Dim)
	s.xb = make([]float32, B*max(c.Dim, c.QDim()))
	s.xb2 = make([]float32, B*c.Dim)
	s.q = make([]float32, B*c.QDim())
	s.hb = make([]float32, B*c.HiddenDim)
	s.hb2 = make([]float32, B*c.HiddenDim)
	s.cos = make([]float32, B*c.HeadDim/2)
	s.sin = make([]float32, B*c.HeadDim/2)
	s.logits = make([]float32, c.VocabSize)
	s.nLayers, s.kvDim, s.maxCtx = c.NLayers, c.KVDim(), c.ContextLength
}

// Eval implements Engine.
func (m *Model) Eval(ctx context.Context, tokens []int, pos int) ([]float32, error) {
	return m.forward(ctx, tokens, pos, nil)
}

// EvalAll is Eval that hands the logits of every token to fn (i indexes
// tokens; logits are valid during the call only). Perplexity uses it.
func (m *Model) EvalAll(ctx context.Context, tokens []int, pos int, fn func(i int, logits []float32) error) error {
	_, err := m.forward(ctx, tokens, pos, fn)
	return err
}

func (m *Model) checkInput(tokens []int, pos int) error {
	c := &m.cfg
	if len(tokens) == 0 {
		return fmt.Errorf("llama: Eval with no tokens")
	}
	if pos < 0 || pos+len(tokens) > c.ContextLength {
		return fmt.Errorf("%w: tokens [%d, %d) but the context holds %d", ErrContextOverflow, pos, pos+len(tokens), c.ContextLength)
	}
	for i, t := range tokens {
		if t < 0 || t >= c.VocabSize {
			return fmt.Errorf("%w: token %d (at %d) is outside the vocabulary of %d", ErrTokenRange, t, i, c.VocabSize)
		}
	}
	if m.closed {
		return fmt.Errorf("llama: model is closed")
	}
	return nil
}

func (m *Model) forward(ctx context.Context, tokens []int, pos int, all func(int, []float32) error) ([]float32, error) {
	if err := m.checkInput(tokens, pos); err != nil {
		return nil, err
	}
	s := &m.s
	s.grow(pos + len(tokens))
	for b := 0; b < len(tokens); b += s.B {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(s.B, len(tokens)-b)
		if err := m.block(ctx, tokens[b:b+n], pos+b); err != nil {
			return nil, err
		}
		if all != nil {
			for t := 0; t < n; t++ {
				logits, err := m.classify(t)
				if err != nil {
					return nil, err
				}
				if err := all(b+t, logits); err != nil {
					return nil, err
				}
			}
		} else if b+n == len(tokens) {
			return m.classify(n - 1)
		}
	}
	return s.logits, nil
}

// classify computes the logits of token t of the last block.
func (m *Model) classify(t int) ([]float32, error) {
	c := &m.cfg
	s := &m.s
	x := s.x[t*c.Dim : (t+1)*c.Dim]
	xb := s.xb[:c.Dim]
	rmsnorm(xb, x, m.W.FinalNorm, float32(c.NormEps))
	m.matmul(s.logits, xb, m.W.Output)
	for i, v := range s.logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: logit %d is %v", ErrNonFinite, i, v)
		}
	}
	return s.logits, nil
}

// block runs the transformer over T = len(tokens) tokens at positions
// [pos, pos+T), leaving the final hidden states in s.x. A cancelled ctx
// stops it between layers (a 7B layer is a fraction of a second).
func (m *Model) block(ctx context.Context, tokens []int, pos int) error {
	c := &m.cfg
	s := &m.s
	w := &m.W
	T := len(tokens)
	dim, qDim, kvDim, hidden, hd := c.Dim, c.QDim(), c.KVDim(), c.HiddenDim, c.HeadDim
	eps := float32(c.NormEps)

	for t, tok := range tokens {
		w.TokEmbeddings.Row(tok, s.x[t*dim:(t+1)*dim])
	}
	m.ropeTables(T, pos)

	x := s.x[:T*dim]
	xb := s.xb[:T*dim]
	xb2 := s.xb2[:T*dim]
	q := s.q[:T*qDim]
	hb, hb2 := s.hb[:T*hidden], s.hb2[:T*hidden]
	for l := range w.Layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		L := &w.Layers[l]
		// attention rmsnorm
		for t := 0; t < T; t++ {
			rmsnorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], L.AttnNorm, eps)
		}
		// qkv; keys and values go straight into the cache
		k := s.keyCache[l][pos*kvDim : (pos+T)*kvDim]
		v := s.valueCache[l][pos*kvDim : (pos+T)*kvDim]
		m.matmul(q, xb, &L.WQ)
		m.matmul(k, xb, &L.WK)
		m.matmul(v, xb, &L.WV)
		// rope: rotate interleaved pairs (2i, 2i+1) of each head
		for t := 0; t < T; t++ {
			cos := s.cos[t*hd/2 : (t+1)*hd/2]
			sin := s.sin[t*hd/2 : (t+1)*hd/2]
			rope(q[t*qDim:(t+1)*qDim], cos, sin)
			rope(k[t*kvDim:(t+1)*kvDim], cos, sin)
		}
		// grouped-query attention over the cache
		ao := s.xb[:T*qDim]
		m.attention(ao, q, l, T, pos)
		// output projection and residual
		m.matmul(xb2, ao, &L.WO)
		add(x, xb2)
		// ffn rmsnorm
		for t := 0; t < T; t++ {
			rmsnorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], L.FFNNorm, eps)
		}
		// SwiGLU: w2(silu(w1·x) * w3·x)
		m.matmul(hb, xb, &L.W1)
		m.matmul(hb2, xb, &L.W3)
		for i, g := range hb {
			hb[i] = g / (1 + float32(math.Exp(float64(-g)))) * hb2[i]
		}
		m.matmul(xb2, hb, &L.W2)
		add(x, xb2)
	}
	return nil
}

// ropeTables fills cos/sin for positions [pos, pos+T).
func (m *Model) ropeTables(T, pos int) {
	s := &m.s
	half := len(m.invFreq)
	for t := 0; t < T; t++ {
		p := float64(pos + t)
		for i, f := range m.invFreq {
			sn, cs := math.Sincos(p * f)
			s.cos[t*half+i] = float32(cs)
			s.sin[t*half+i] = float32(sn)
		}
	}
}

// rope rotates each head's interleaved pairs of v (n_heads × head_dim).
func rope(v, cos, sin []float32) {
	half := len(cos)
	for h := 0; h < len(v); h += 2 * half {
		vh := v[h : h+2*half]
		for i := 0; i < half; i++ {
			v0, v1 := vh[2*i], vh[2*i+1]
			vh[2*i] = v0*cos[i] - v1*sin[i]
			vh[2*i+1] = v0*sin[i] + v1*cos[i]
		}
	}
}

// attention computes, for each token t of the block and each query head h,
// softmax(q·K/√head_dim)·V over positions [0, pos+t], with head h reading kv
// head h / (n_heads/n_kv_heads). The result goes to out (T, q_dim).
func (m *Model) attention(out, q []float32, l, T, pos int) {
	c := &m.cfg
	s := &m.s
	hd, kvDim, qDim := c.HeadDim, c.KVDim(), c.QDim()
	group := c.NHeads / c.NKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	kc, vc := s.keyCache[l], s.valueCache[l]
	if len(s.att) < m.threads {
		s.att = make([][]float32, m.threads)
	}
	work := T * c.NHeads
	m.parallel(work, 1, func(w, lo, hi int) {
		if len(s.att[w]) < s.kvCap {
			s.att[w] = make([]float32, s.kvCap)
		}
		for i := lo; i < hi; i++ {
			t, h := i/c.NHeads, i%c.NHeads
			p := pos + t
			qh := q[t*qDim+h*hd : t*qDim+(h+1)*hd]
			koff := (h / group) * hd
			att := s.att[w][:p+1]
			for j := range att {
				att[j] = dotF32(qh, kc[j*kvDim+koff:j*kvDim+koff+hd]) * scale
			}
			softmax(att)
			o := out[t*qDim+h*hd : t*qDim+(h+1)*hd]
			clear(o)
			for j, a := range att {
				vj := vc[j*kvDim+koff : j*kvDim+koff+hd]
				for i := range o {
					o[i] += a * vj[i]
				}
			}
		}
	})
}

func rmsnorm(out, x, weight []float32, eps float32) {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	ss = ss/float32(len(x)) + eps
	ss = 1 / float32(math.Sqrt(float64(ss)))
	for i, v := range x {
		out[i] = weight[i] * (ss * v)
	}
}

func softmax(x []float32) {
	maxv := x[0]
	for _, v := range x[1:] {
		maxv = max(maxv, v)
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxv)))
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}

func add(x, y []float32) {
	y = y[:len(x)]
	for i := range x {
		x[i] += y[i]
	}
}
